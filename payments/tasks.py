"""The gateway core's background work, as Celery tasks: applying stored webhook events,
dj-stripe's sync, and the inbox's sweeper and pruning (beat runs those two; see
CELERY_BEAT_SCHEDULE).

Every task may run twice (at-least-once delivery: ``acks_late``, a redelivered message,
the sweeper, two beats by mistake): applying an event locks its inbox row and changes
nothing once the row is settled, so a second run is harmless.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from payments.models import InboxStatus, WebhookEvent
from payments.services import (
    WebhookOutcome,
    inbox_apply,
    inbox_apply_stored,
    webhook_events_due,
    webhook_events_prune,
    webhook_receive,
)

logger = logging.getLogger(__name__)

# Retries wait 10 s, 20 s, 40 s... up to 30 min: under the Redis broker's visibility
# timeout (1 h), so that a retry waiting in a worker is not delivered a second time.
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 30 * 60
# How long the sweeper sends again an event left received; an older one stays listed
# for staff (Payments > Webhook events, status received).
SWEEP_RECEIVED_FOR = timedelta(days=3)


def retry_delay(retries: int) -> int:
    """Exponential back-off with jitter: half the delay fixed, half random, so that the
    retries of a burst do not all come back at once."""
    delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**retries)
    return delay // 2 + secrets.randbelow(delay // 2 + 1)


def webhook_deliver(
    *,
    channel: str,
    body: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None = None,
    integration_bid: str = "",
) -> WebhookOutcome:
    """One delivery, verified and stored, then dispatched: what a receiver answers."""
    return webhook_dispatch(
        webhook_receive(
            channel=channel,
            body=body,
            headers=headers,
            remote_addr=remote_addr,
            integration_bid=integration_bid,
        )
    )


def webhook_dispatch(outcome: WebhookOutcome) -> WebhookOutcome:
    """Have a stored event applied, if it is pending, and say what to answer.

    With a broker, a worker applies it once the request's transaction commits, and the
    answer is 200 now; a repeat of an event still to be applied sends nothing more (its
    task, its retries or the sweeper apply it), so replayed deliveries cannot fill the
    queue. Without a broker (the embedded default) it is applied here and the answer
    says what applying did: a 5xx makes the provider deliver it again, standing in for
    the worker's retries.
    """
    if not outcome.pending:
        return outcome
    row = outcome.event
    if apply_webhook_event.app.conf.task_always_eager:
        applied = inbox_apply(row=row)
        if applied.code != "duplicate":
            _follow_up(applied)
        return applied
    if outcome.stored_now:
        transaction.on_commit(lambda: apply_webhook_event.delay(row.pk))
    return outcome


@shared_task(
    bind=True,
    name="payments.apply_webhook_event",
    ignore_result=True,
    # The database away: the same back-off, then the sweeper.
    autoretry_for=(DatabaseError,),
    retry_backoff=RETRY_BASE_SECONDS,
    retry_backoff_max=RETRY_MAX_SECONDS,
    max_retries=8,
)
def apply_webhook_event(self, pk: int) -> str:
    """Apply one stored event; what cannot be applied yet (a refund before its payment,
    an unknown attempt of ours) is retried with back-off, WEBHOOK_APPLY_RETRIES times,
    then left failed in the inbox, where the admin lists it and can apply it again."""
    outcome = inbox_apply_stored(pk)
    if outcome is None:
        return "gone"
    if outcome.http_status >= 500:
        retries = self.request.retries
        if not self.request.is_eager and retries < settings.WEBHOOK_APPLY_RETRIES:
            raise self.retry(
                countdown=retry_delay(retries), max_retries=settings.WEBHOOK_APPLY_RETRIES
            )
        logger.error(
            "webhook event left failed after %d tries: %s",
            outcome.event.attempts,
            outcome.code,
            extra={"inbox_id": pk, "channel": outcome.event.channel, "code": outcome.code},
        )
        return outcome.code
    # A duplicate too: the run that applied it may have died before its follow-up.
    _follow_up(outcome)
    return outcome.code


def _follow_up(outcome: WebhookOutcome) -> None:
    """What a channel does after one of its events is applied (Stripe: dj-stripe's sync)."""
    row = outcome.event
    settled = row.status in (InboxStatus.APPLIED, InboxStatus.IGNORED)
    if row.channel == "stripe" and outcome.http_status < 400 and settled:
        sync_stripe_event.delay(row.pk)


@shared_task(bind=True, name="payments.sync_stripe_event", ignore_result=True, max_retries=5)
def sync_stripe_event(self, pk: int) -> None:
    """Settle a refunded charge's other refunds and sync dj-stripe's copy of the event's
    objects: Stripe API calls, at most STRIPE_SYNC_RATE_LIMIT per worker (the task's
    annotation). A failure is retried with back-off, then kept on the inbox row.

    It goes to its own queue, ``STRIPE_SYNC_QUEUE``, for a worker of its own: a worker
    holding a task back for its rate limit fetches nothing else meanwhile, and applying
    events must not wait on Stripe's API limits."""
    from payments.stripe_webhooks import stripe_event_follow_up

    row = WebhookEvent.objects.filter(pk=pk, channel="stripe").first()
    if row is None:
        return
    try:
        stripe_event_follow_up(row)
    except Exception as exc:  # Stripe, the network or dj-stripe: all may pass
        if not self.request.is_eager and self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=retry_delay(self.request.retries)) from exc
        logger.exception(
            "stripe event not synced", extra={"inbox_id": pk, "event_id": row.event_id}
        )
        WebhookEvent.objects.filter(pk=pk).update(
            last_error=f"dj-stripe sync: {type(exc).__name__}: {exc}"[:5000]
        )


@shared_task(name="payments.sweep_webhook_inbox", ignore_result=True)
def sweep_webhook_inbox(*, limit: int = 500) -> int:
    """Enqueue again what no task will apply: rows left received for
    WEBHOOK_SWEEP_AFTER_SECONDS (a lost broker message, a worker gone before its
    commit), at most once per that period each and for three days, and failed rows
    with tries left whose retry never came back."""
    now = timezone.now()
    due = webhook_events_due(
        received_before=now - timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS),
        # As long as reconciliation retries failed events: older ones are for staff.
        received_after=now - SWEEP_RECEIVED_FOR,
        failed_before=now - timedelta(seconds=2 * RETRY_MAX_SECONDS),
        max_attempts=settings.WEBHOOK_APPLY_RETRIES,
        limit=limit,
    )
    for pk in due:
        apply_webhook_event.delay(pk)
    if due:
        logger.warning("webhook inbox swept: %d events enqueued again", len(due))
    return len(due)


@shared_task(name="payments.prune_webhook_events", ignore_result=True)
def prune_webhook_events() -> int:
    """Delete applied, ignored and rejected inbox rows older than WEBHOOK_PRUNE_DAYS, in
    small batches that skip rows another run holds (safe with two beats)."""
    before = timezone.now() - timedelta(days=settings.WEBHOOK_PRUNE_DAYS)
    return sum(webhook_events_prune(before=before).values())
