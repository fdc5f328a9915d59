"""How outbound events are signed, and how a receiver checks them.

``X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, keyed with the
endpoint's secret: the scheme Stripe signs its webhooks with. ``verify_signature`` is
the receiver's side; it needs only the standard library, so the platform's developers
may copy this module as it is (docs/integration.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Signature"


class SignatureInvalid(ValueError):
    """The body is not signed with the secret, or the signature is too old."""


def signature(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``X-Signature`` value of ``body``, signed now (or at ``timestamp``)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_mac(secret, t, body)}"


def verify_signature(
    body: bytes, header: str, secret: str, tolerance: int = 300, *, now: float | None = None
) -> int:
    """Check an ``X-Signature`` header against the raw request ``body``.

    Returns the signature's timestamp. Raises ``SignatureInvalid`` when the header is
    malformed, no ``v1`` matches (several are allowed, as during a secret rotation), or
    the timestamp is more than ``tolerance`` seconds from now (a replay).
    """
    if isinstance(body, str):
        body = body.encode()
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureInvalid("no timestamp in the signature header") from None
    expected = _mac(secret, t, body)
    if not any(hmac.compare_digest(expected, v1) for v1 in parts.get("v1", [])):
        raise SignatureInvalid("no signature matches the body")
    current = time.time() if now is None else now
    if tolerance and abs(current - t) > tolerance:
        raise SignatureInvalid(f"signed {int(current - t)} s ago, over {tolerance} s")
    return t


def _mac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
