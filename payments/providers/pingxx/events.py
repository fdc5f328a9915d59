"""Ping++ webhooks: the signature check, and events (plain JSON) as ProviderEvent."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.Signature import pkcs1_15

from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    EVENT_REFUND,
    PAYMENT_SUCCEEDED,
    ProviderEvent,
    WebhookSignatureInvalid,
)
from payments.providers.payloads import Malformed, envelope, livemode
from payments.providers.pingxx.payloads import payment_state_of, refund_state_of

CHANNEL = "pingxx"
SIGNATURE_HEADER = "x-pingplusplus-signature"


def verify_signature(key: RSA.RsaKey, body: bytes, signature: str) -> None:
    """Check the body's RSA-SHA256 signature (base64) against Ping++'s public key."""
    if not signature:
        raise WebhookSignatureInvalid(
            "The webhook carries no signature.", channel=CHANNEL, signature="missing"
        )
    try:
        raw_signature = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSignatureInvalid(
            "The webhook signature is not base64.", channel=CHANNEL, signature="malformed"
        ) from None
    try:
        pkcs1_15.new(key).verify(SHA256.new(body), raw_signature)
    except (ValueError, TypeError):
        raise WebhookSignatureInvalid(
            "The webhook signature does not match its body.",
            channel=CHANNEL,
            signature="mismatch",
        ) from None


def parse_event(event: Any) -> ProviderEvent:
    """A Ping++ event as plain JSON, normalised; raises Malformed."""
    event_id, event_type, obj = envelope(event)
    mode = livemode(event)
    common = {"event_id": event_id, "event_type": event_type, "livemode": mode}
    if event_type == "charge.succeeded":
        payment = payment_state_of(obj)
        if payment.state != PAYMENT_SUCCEEDED:
            raise Malformed("charge.succeeded for a charge that is not paid")
        return ProviderEvent(kind=EVENT_PAYMENT, payment=payment, raw=event, **common)
    if event_type.startswith("refund."):
        refund = refund_state_of(obj, livemode=mode, default_status=event_type.partition(".")[2])
        return ProviderEvent(kind=EVENT_REFUND, refund=refund, raw=event, **common)
    return ProviderEvent(kind=EVENT_OTHER, raw=event, **common)
