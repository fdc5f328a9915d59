"""Stripe events (plain JSON, already verified) as ProviderEvent."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    EVENT_REFUND,
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    ProviderEvent,
)
from payments.providers.payloads import Malformed, envelope, identifier, livemode, text
from payments.providers.stripe.payloads import (
    SESSION_PAID,
    checkout_session_state,
    payment_intent_state,
    refund_state,
)

# Fields of event objects never kept: a PaymentIntent's client_secret lets anyone who
# reads it complete the payment.
REDACTED_FIELDS = ("client_secret",)

PAYMENT_INTENT_EVENTS = {
    "payment_intent.succeeded": PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": PAYMENT_FAILED,
    "payment_intent.canceled": PAYMENT_CLOSED,
}
SESSION_EVENTS = {
    "checkout.session.completed": None,  # succeeded if paid, else pending (async methods)
    "checkout.session.async_payment_succeeded": PAYMENT_SUCCEEDED,
    "checkout.session.async_payment_failed": PAYMENT_FAILED,
    "checkout.session.expired": PAYMENT_CLOSED,
}
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed"})


def redacted(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The event without what lets a client pay (a PaymentIntent's client_secret): a
    copy where there is something to redact, else the event itself."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping) or not any(obj.get(key) for key in REDACTED_FIELDS):
        return payload if isinstance(payload, dict) else dict(payload)
    clean = json.loads(json.dumps(payload))
    for key in REDACTED_FIELDS:
        if clean["data"]["object"].get(key):
            clean["data"]["object"][key] = "[redacted]"
    return clean


def parse_event(event: Any) -> ProviderEvent:
    """A Stripe event as plain JSON, normalised, its ``raw`` redacted; raises Malformed."""
    if not isinstance(event, dict):
        raise Malformed("not an object")
    if event.get("object", "event") != "event":
        raise Malformed(f"an object of type {event.get('object')!r}, not event")
    event = redacted(event)
    event_id, event_type, obj = envelope(event)
    mode = livemode(event)
    common = {
        "event_id": event_id,
        "event_type": event_type,
        "livemode": mode,
        "raw": event,
    }
    if event_type in PAYMENT_INTENT_EVENTS:
        payment = payment_intent_state(obj, state=PAYMENT_INTENT_EVENTS[event_type])
        return ProviderEvent(kind=EVENT_PAYMENT, payment=payment, **common)
    if event_type in SESSION_EVENTS:
        payment = checkout_session_state(obj, state=_session_event_state(event_type, obj))
        return ProviderEvent(kind=EVENT_PAYMENT, payment=payment, **common)
    if event_type in REFUND_EVENTS:
        refund = refund_state(obj, livemode=mode)
        return ProviderEvent(kind=EVENT_REFUND, refund=refund, **common)
    if event_type == "charge.refunded":
        identifier(obj, "charge")
        latest = _latest_refund(obj)
        if latest is None:
            return ProviderEvent(kind=EVENT_OTHER, **common)
        if not latest.get("payment_intent") and obj.get("payment_intent"):
            latest = {**latest, "payment_intent": obj["payment_intent"]}
        refund = refund_state(latest, livemode=mode)
        return ProviderEvent(kind=EVENT_REFUND, refund=refund, **common)
    return ProviderEvent(kind=EVENT_OTHER, **common)


def _session_event_state(event_type: str, session: Mapping[str, Any]) -> str:
    state = SESSION_EVENTS[event_type]
    if state is not None:
        return state
    # checkout.session.completed: paid now, or later by an asynchronous method.
    paid = text(session, "payment_status") in SESSION_PAID
    return PAYMENT_SUCCEEDED if paid else PAYMENT_PENDING


def _latest_refund(charge: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The newest refund a charge carries (only when its refunds were expanded)."""
    refunds = charge.get("refunds")
    data = refunds.get("data") if isinstance(refunds, Mapping) else None
    if not isinstance(data, list) or not data:
        return None
    items = [item for item in data if isinstance(item, Mapping)]
    if len(items) != len(data):
        raise Malformed("charge.refunds holds something other than refunds")
    # Stripe lists the newest first; "created" settles ties of order.
    return max(
        items,
        key=lambda item: (
            item.get("created") if isinstance(item.get("created"), int) else 0,
            -items.index(item),
        ),
    )
