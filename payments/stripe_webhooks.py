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

from django.dispatch import receiver
from djstripe.event_handlers import djstripe_receiver
from djstripe.signals import webhook_processing_error

from payments import registry
from payments.providers.base import WebhookRejected
from payments.services import (
    WebhookOutcome,
    verified_event_failed,
    verified_event_receive,
    verified_event_rejected,
)

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
    provider = registry.get_provider_any(CHANNEL)
    body = json.dumps(payload, sort_keys=True)
    try:
        event = provider.event_from_stripe(payload)
    except WebhookRejected as exc:
        # Verified, but not readable as one of ours (a refund of a plain Charge made by
        # another integration, say): recorded; sending it again would not help.
        return verified_event_rejected(channel=CHANNEL, body=body, error=exc)
    outcome = verified_event_receive(channel=CHANNEL, event=event, body=body)
    if outcome.http_status < 500 and payload.get("type") == "charge.refunded":
        outcome = _settle_charge_refunds(provider, payload, event.event_id) or outcome
    return outcome


def _settle_charge_refunds(provider, payload: Mapping[str, Any], event_id: str):
    """Every refund of a refunded charge of ours, settled (its event carries at most one)."""
    from orders.errors import AttemptNotFound, EventConflict, NotApplicableYet
    from orders.services import refund_apply

    payment_intent = payload["data"]["object"].get("payment_intent")
    if isinstance(payment_intent, Mapping):
        payment_intent = payment_intent.get("id")
    if not payment_intent or not provider.attempts_for(provider_payment_id=payment_intent).exists():
        return None  # not a payment of ours
    for state in provider.refunds_of(payment_intent):
        try:
            refund_apply(channel=CHANNEL, state=state, source=f"{CHANNEL}:{event_id}")
        except (AttemptNotFound, EventConflict):
            continue
        except NotApplicableYet as exc:
            return WebhookOutcome(503, exc.code, exc.message)
    return None


@djstripe_receiver(list(HANDLED_EVENTS))
def apply_stripe_event(sender: Any, event: Any, **kwargs: Any) -> None:
    outcome = stripe_event_apply(event_payload(event))
    if outcome.http_status >= 500:
        raise StripeEventNotApplied(f"{outcome.code}: {outcome.message}")


@receiver(webhook_processing_error)
def keep_unapplied_event(sender: Any, instance: Any, exception: Exception, **kwargs: Any) -> None:
    """dj-stripe rolled the delivery back: keep the event in the inbox as failed, so
    that reconciliation or Stripe's next delivery applies it."""
    if not isinstance(exception, StripeEventNotApplied):
        return
    payload = instance.json_body
    if payload.get("type") not in HANDLED_EVENTS:
        return
    event = registry.get_provider_any(CHANNEL).event_from_stripe(payload)
    verified_event_failed(
        channel=CHANNEL,
        event=event,
        body=json.dumps(payload, sort_keys=True),
        error=str(exception),
    )
