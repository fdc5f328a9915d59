"""Merchant credentials at rest: sealed with Fernet (AES-128-CBC and HMAC-SHA256, from
``cryptography``) under the keys of ``PAYMENT_CREDENTIALS_KEYS``.

The first key seals; every key opens, so that a key is rotated without a window in
which stored credentials cannot be read: put the new key first, re-seal
(``manage.py payment_credentials_rotate``), then drop the old key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from payments_project.errors import ServiceError

KEY_GONE = (
    "Stored merchant credentials cannot be opened with PAYMENT_CREDENTIALS_KEYS: the key "
    "that sealed them is not among them."
)


class CredentialsLocked(ServiceError):
    """Credentials cannot be sealed or opened: no key, a bad key, or a key that is gone."""

    code = "payment_credentials_locked"
    http_status = 503


def configured_keys() -> list[str]:
    """The keys of PAYMENT_CREDENTIALS_KEYS, blanks left out; the first seals."""
    return [key for key in settings.PAYMENT_CREDENTIALS_KEYS if key]


def key_problems() -> list[str]:
    """What is wrong with PAYMENT_CREDENTIALS_KEYS, naming keys by position, never by value."""
    keys = configured_keys()
    problems = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            problems.append(
                f"PAYMENT_CREDENTIALS_KEYS: key {position} of {len(keys)} is not a Fernet key "
                "(32 url-safe base64 bytes; manage.py payment_credentials_rotate --new-key makes "
                "one)."
            )
    return problems


def _keys() -> MultiFernet:
    keys = configured_keys()
    if not keys:
        raise CredentialsLocked(
            "PAYMENT_CREDENTIALS_KEYS is not set: merchant credentials cannot be read or stored."
        )
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError):
        raise CredentialsLocked(
            "PAYMENT_CREDENTIALS_KEYS holds a key that is not a Fernet key (32 url-safe "
            "base64 bytes)."
        ) from None


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def seal(secret: Mapping[str, str]) -> str:
    """The secret fields as one token, under the first key."""
    return _keys().encrypt(json.dumps(dict(secret), sort_keys=True).encode()).decode("ascii")


def unseal(token: str) -> dict[str, str]:
    """The secret fields of a token sealed under any of the keys."""
    if not token:
        return {}
    try:
        opened = _keys().decrypt(token.encode("ascii"))
    except InvalidToken:
        raise CredentialsLocked(KEY_GONE) from None
    value = json.loads(opened)
    return {str(name): str(text) for name, text in value.items()}


def reseal(token: str) -> str:
    """The same secret, sealed under the first key (rotation)."""
    if not token:
        return token
    try:
        return _keys().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise CredentialsLocked(KEY_GONE) from None


def sealed_under_first_key(token: str) -> bool:
    """Whether ``token`` opens with the first key alone: after a rotation every stored
    token should, before the older keys are removed."""
    _keys()  # CredentialsLocked without a usable key
    first = Fernet(configured_keys()[0])
    try:
        first.decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


def fingerprint(value: str) -> str:
    """What the admin shows of a secret: its length and the start of its SHA-256, never
    any of its characters."""
    if not value:
        return ""
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"set · {len(value)} characters · sha256 {digest}"
