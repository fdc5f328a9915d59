"""WeChat Pay notifications: the signature check, the decryption of their resource, and
the decrypted notification (plain JSON) as a ProviderEvent.

WeChat Pay signs ``timestamp\\nnonce\\nbody\\n`` with its platform key (RSA-SHA256,
PKCS#1 v1.5, the Wechatpay-* headers) and encrypts the resource with our API v3 key
(AES-256-GCM). A signature carries its time: a notification is verified once, when it
arrives, and kept decrypted (``notification_payload``), read back by ``parse_event``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    EVENT_REFUND,
    PAYMENT_SUCCEEDED,
    ProviderEvent,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from payments.providers.payloads import Malformed, header, text
from payments.providers.wechatpay.config import CHANNEL
from payments.providers.wechatpay.payloads import payment_state_of, refund_state_of

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
# How far a notification's Wechatpay-Timestamp may be from now, either way (seconds):
# the 5 minutes WeChat Pay's own servers allow a request.
TIMESTAMP_TOLERANCE = 300
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})
PAYMENT_EVENT = "TRANSACTION.SUCCESS"


@dataclass(frozen=True)
class WebhookKeys:
    """What verifies and reads one account's notifications."""

    mch_id: str
    platform_key: rsa.RSAPublicKey
    platform_serial: int
    api_v3_key: bytes


def _invalid(message: str, reason: str) -> WebhookSignatureInvalid:
    return WebhookSignatureInvalid(message, channel=CHANNEL, signature=reason)


def _payload_invalid(message: str, *, code: str | None = None) -> WebhookPayloadInvalid:
    return WebhookPayloadInvalid(message, channel=CHANNEL, signature="valid", code=code)


def verify_signature(
    keys: WebhookKeys, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> None:
    """Check the Wechatpay-* headers against the body; raises WebhookSignatureInvalid."""
    signature, timestamp, nonce, serial = (
        header(headers, f"wechatpay-{name}")
        for name in ("signature", "timestamp", "nonce", "serial")
    )
    if not (signature and timestamp and nonce and serial):
        raise _invalid("The notification lacks its Wechatpay-* signature headers.", "missing")
    kind = header(headers, "wechatpay-signature-type")
    if kind and kind != SIGNATURE_TYPE:
        raise _invalid(f"The notification is signed with {kind!r}.", "unsupported")
    try:
        serial_number = int(serial, 16)
        signed_at = int(timestamp)
    except ValueError:
        raise _invalid(
            "The notification's serial or timestamp is malformed.", "malformed"
        ) from None
    if serial_number != keys.platform_serial:
        raise _invalid(
            f"The notification is signed under certificate {serial}, not the configured one.",
            "unknown_serial",
        )
    now = time.time() if now is None else now
    if abs(now - signed_at) > TIMESTAMP_TOLERANCE:
        raise _invalid("The notification's timestamp is too far from now.", "stale")
    try:
        raw_signature = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("The notification's signature is not base64.", "malformed") from None
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    try:
        keys.platform_key.verify(raw_signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise _invalid("The notification's signature does not match it.", "mismatch") from None


def notification_payload(keys: WebhookKeys, body: bytes) -> dict[str, Any]:
    """A verified notification, its resource decrypted: the JSON kept in the inbox (no
    ciphertext, no key). Raises WebhookPayloadInvalid."""
    try:
        notification = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _payload_invalid("The notification is not JSON.") from None
    if not isinstance(notification, dict):
        raise _payload_invalid("The notification is not a JSON object.")
    resource = notification.get("resource")
    if notification.get("resource_type") != "encrypt-resource" or not isinstance(resource, dict):
        raise _payload_invalid("The notification carries no encrypted resource.")
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise _payload_invalid(f"Unknown resource algorithm {resource.get('algorithm')!r}.")
    nonce, ciphertext = text(resource, "nonce"), text(resource, "ciphertext")
    try:
        plain = AESGCM(keys.api_v3_key).decrypt(
            nonce.encode("utf-8"),
            base64.b64decode(ciphertext, validate=True),
            text(resource, "associated_data").encode("utf-8"),
        )
        decrypted = json.loads(plain)
    except (InvalidTag, ValueError, binascii.Error, UnicodeDecodeError):
        raise _payload_invalid(
            "The notification's resource does not decrypt with the API v3 key.",
            code="webhook_undecryptable",
        ) from None
    if not isinstance(decrypted, dict):
        raise _payload_invalid("The notification's resource is not a JSON object.")
    return {
        "id": notification.get("id"),
        "event_type": notification.get("event_type"),
        "create_time": notification.get("create_time"),
        "resource": decrypted,
    }


def parse_event(payload: Any, *, mch_id: str) -> ProviderEvent:
    """A decrypted notification (``notification_payload``'s shape), normalised.

    Raises WebhookPayloadInvalid; an event of another merchant with the code
    ``webhook_merchant_mismatch``.
    """
    try:
        event_id, event_type, resource = _envelope(payload)
    except Malformed as exc:
        raise _payload_invalid(f"Not a WeChat Pay notification: {exc}.") from None
    if text(resource, "mchid") != mch_id:
        raise _payload_invalid(
            f"The notification is for merchant {text(resource, 'mchid')!r}, not {mch_id!r}.",
            code="webhook_merchant_mismatch",
        )
    common = {"event_id": event_id, "event_type": event_type, "livemode": None, "raw": payload}
    try:
        if event_type == PAYMENT_EVENT:
            payment = payment_state_of(resource)
            if payment.state != PAYMENT_SUCCEEDED:
                raise Malformed("TRANSACTION.SUCCESS for a transaction that is not paid")
            return ProviderEvent(kind=EVENT_PAYMENT, payment=payment, **common)
        if event_type in REFUND_EVENTS:
            refund = refund_state_of(resource)
            return ProviderEvent(kind=EVENT_REFUND, refund=refund, **common)
    except Malformed as exc:
        raise _payload_invalid(f"Not a WeChat Pay {event_type} resource: {exc}.") from None
    return ProviderEvent(kind=EVENT_OTHER, **common)


def _envelope(payload: Any) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(payload, Mapping):
        raise Malformed("not an object")
    event_id, event_type = payload.get("id"), payload.get("event_type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise Malformed("no id or event_type")
    resource = payload.get("resource")
    if not isinstance(resource, dict):
        raise Malformed("no resource")
    return event_id, event_type, resource
