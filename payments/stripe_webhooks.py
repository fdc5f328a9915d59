"""Stripe webhooks: our receiver verifies and stores; a worker applies, then syncs.

The receiver (payments.views.stripe_webhook) checks the Stripe-Signature (300 s
tolerance, through dj-stripe's own check) and stores the event, redacted, in this
service's inbox, like every channel's. Applying it is the task
``payments.apply_webhook_event``; after it, ``payments.sync_stripe_event`` hands the
event to dj-stripe, which re-fetches its objects from the Stripe API to keep its own
copy in step. That re-fetch runs at most ``STRIPE_SYNC_RATE_LIMIT`` per worker, so that
a burst of events does not run into Stripe's API limits, and never in a request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction

from payments import registry
from payments.models import WebhookEvent
from payments.providers.base import ProviderError, WebhookRejected
from payments.providers.stripe.events import REDACTED_FIELDS, redacted
from payments.services import (
    WebhookOutcome,
    verified_event_receive,
    verified_event_rejected,
)
from payments.sink import sink
from payments_project.errors import ServiceError

CHANNEL = "stripe"

__all__ = ["HANDLED_EVENTS", "REDACTED_FIELDS", "redacted", "stripe_event_apply"]

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


def stripe_event_apply(payload: Mapping[str, Any]) -> WebhookOutcome:
    """Store and apply, here, one verified Stripe event; a charge's refunds are all
    settled after the commit."""
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
    if outcome.http_status < 500:
        payment_intent = refunded_payment_intent(payload)
        if payment_intent:
            # Asking Stripe for the refunds waits for the commit: no call under locks.
            transaction.on_commit(
                lambda: settle_charge_refunds(payment_intent, source=f"{CHANNEL}:{event.event_id}")
            )
    return outcome


def refunded_payment_intent(payload: Mapping[str, Any]) -> str:
    """The PaymentIntent of ours whose charge a ``charge.refunded`` event refunds, or ""."""
    if payload.get("type") != "charge.refunded":
        return ""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    payment_intent = obj.get("payment_intent") if isinstance(obj, Mapping) else None
    if isinstance(payment_intent, Mapping):
        payment_intent = payment_intent.get("id")
    if not isinstance(payment_intent, str) or not payment_intent:
        return ""
    provider = registry.get_provider_any(CHANNEL)
    return (
        payment_intent if provider.attempts_for(provider_payment_id=payment_intent).exists() else ""
    )


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


def stripe_event_follow_up(row: WebhookEvent) -> None:
    """After an event is applied (a worker's task): a refunded charge's other refunds
    settled, and dj-stripe's copy of the event's objects synced from Stripe. Raises
    what a retry may cure (Stripe or the network failing)."""
    payload = row.payload or json.loads(row.body)
    payment_intent = refunded_payment_intent(payload)
    if payment_intent:
        settle_charge_refunds(payment_intent, source=f"{CHANNEL}:{row.event_id}")
    from djstripe.models import Event

    # dj-stripe stores the event once per id and re-fetches each object it names.
    Event.process(data=payload, api_key=settings.STRIPE_SECRET_KEY)
