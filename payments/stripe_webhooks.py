"""Stripe webhooks: dj-stripe receives, verifies, logs and syncs; these receivers apply.

dj-stripe verifies the signature (300 s tolerance), records every delivery as a
``WebhookEventTrigger`` and syncs its own copy of the objects. The receivers below
store each handled event in this service's inbox too (unique per event id, so a
repeat changes nothing) and apply it through the same services as every channel.
An event that cannot be applied yet raises, so that dj-stripe answers 5xx, keeps the
error on its trigger (visible in the admin) and Stripe sends the event again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from djstripe.event_handlers import djstripe_receiver

from payments import registry
from payments.services import WebhookOutcome, verified_event_receive

CHANNEL = "stripe"

HANDLED_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
)


class StripeEventNotApplied(Exception):
    """Raised from a receiver so that dj-stripe answers 5xx and Stripe retries."""


def event_payload(event: Any) -> dict[str, Any]:
    """The Stripe event as Stripe sent it, from dj-stripe's Event row."""
    return {
        "id": event.id,
        "object": "event",
        "type": event.type,
        "livemode": event.livemode,
        "api_version": getattr(event, "api_version", "") or "",
        "created": int(event.created.timestamp()) if getattr(event, "created", None) else None,
        "data": event.data,
    }


def stripe_event_apply(payload: Mapping[str, Any]) -> WebhookOutcome:
    """Store and apply one verified Stripe event; a charge's refunds are all settled."""
    from orders.services import refund_apply

    provider = registry.get_provider_any(CHANNEL)
    event = provider.event_from_stripe(payload)
    outcome = verified_event_receive(
        channel=CHANNEL, event=event, body=json.dumps(payload, sort_keys=True)
    )
    if outcome.http_status < 500 and payload.get("type") == "charge.refunded":
        charge = payload["data"]["object"]
        payment_intent = charge.get("payment_intent")
        if payment_intent:
            for state in provider.refunds_of(payment_intent):
                refund_apply(channel=CHANNEL, state=state, source=f"{CHANNEL}:{event.event_id}")
    return outcome


@djstripe_receiver(list(HANDLED_EVENTS))
def apply_stripe_event(sender: Any, event: Any, **kwargs: Any) -> None:
    outcome = stripe_event_apply(event_payload(event))
    if outcome.http_status >= 500:
        raise StripeEventNotApplied(f"{outcome.code}: {outcome.message}")
