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
import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from djstripe.event_handlers import djstripe_receiver
from djstripe.signals import webhook_processing_error

from payments import registry
from payments.providers.base import ProviderError, WebhookRejected
from payments.services import (
    WebhookOutcome,
    verified_event_failed,
    verified_event_receive,
    verified_event_rejected,
)
from payments.sink import sink
from payments_project.errors import ServiceError

CHANNEL = "stripe"
# Fields of event objects never stored: a PaymentIntent's client_secret lets anyone
# who reads it complete the payment.
REDACTED_FIELDS = ("client_secret",)

logger = logging.getLogger(__name__)

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


def redacted(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The event without what lets a client pay (a PaymentIntent's client_secret)."""
    clean = json.loads(json.dumps(payload))
    obj = clean.get("data", {}).get("object")
    if isinstance(obj, dict):
        for key in REDACTED_FIELDS:
            if obj.get(key):
                obj[key] = "[redacted]"
    return clean


def stripe_event_apply(payload: Mapping[str, Any]) -> WebhookOutcome:
    """Store and apply one verified Stripe event; a charge's refunds are all settled."""
    provider = registry.get_provider_any(CHANNEL)
    payload = redacted(payload)
    body = json.dumps(payload, sort_keys=True)
    try:
        event = provider.event_from_stripe(payload)
    except WebhookRejected as exc:
        # Verified, but not readable as one of ours (a refund of a plain Charge made by
        # another integration, say): recorded; sending it again would not help.
        return verified_event_rejected(channel=CHANNEL, body=body, error=exc)
    outcome = verified_event_receive(channel=CHANNEL, event=event, body=body)
    if outcome.http_status < 500 and payload.get("type") == "charge.refunded":
        payment_intent = payload["data"]["object"].get("payment_intent")
        if isinstance(payment_intent, Mapping):
            payment_intent = payment_intent.get("id")
        if payment_intent and provider.attempts_for(provider_payment_id=payment_intent).exists():
            # Asking Stripe for the refunds waits for the commit: no call under locks.
            transaction.on_commit(
                lambda: settle_charge_refunds(payment_intent, source=f"{CHANNEL}:{event.event_id}")
            )
    return outcome


def settle_charge_refunds(payment_intent: str, *, source: str) -> None:
    """Every refund of a refunded charge of ours, settled (its event carries at most
    one). What cannot be settled now is left to the refund.* events and reconciliation."""
    provider = registry.get_provider_any(CHANNEL)
    try:
        states = provider.refunds_of(payment_intent)
    except ProviderError:
        logger.warning(
            "refunds of %s not fetched; left to reconciliation",
            payment_intent,
            extra={"channel": CHANNEL, "provider_payment_id": payment_intent},
        )
        return
    for state in states:
        try:
            sink().refund_reported(channel=CHANNEL, state=state, source=source)
        except ServiceError as exc:
            logger.warning(
                "refund %s not settled: %s",
                state.provider_refund_id,
                exc.code,
                extra={"channel": CHANNEL, "refund_bid": state.refund_bid, "code": exc.code},
            )


@djstripe_receiver(list(HANDLED_EVENTS))
def apply_stripe_event(sender: Any, event: Any, **kwargs: Any) -> None:
    outcome = stripe_event_apply(event_payload(event))
    if outcome.http_status >= 500:
        raise StripeEventNotApplied(f"{outcome.code}: {outcome.message}")


@receiver(webhook_processing_error)
def keep_unapplied_event(sender: Any, instance: Any, exception: Exception, **kwargs: Any) -> None:
    """dj-stripe rolled the delivery back (our receiver, or dj-stripe's own sync before
    it, failed): keep a handled event in the inbox as failed, so that reconciliation or
    Stripe's next delivery applies it. The signature was verified before processing."""
    if not getattr(instance, "valid", True):
        return
    payload = redacted(instance.json_body)
    if payload.get("type") not in HANDLED_EVENTS:
        return
    try:
        event = registry.get_provider_any(CHANNEL).event_from_stripe(payload)
    except WebhookRejected:
        return
    verified_event_failed(
        channel=CHANNEL,
        event=event,
        body=json.dumps(payload, sort_keys=True),
        error=f"{type(exception).__name__}: {exception}",
    )
