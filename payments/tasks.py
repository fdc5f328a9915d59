"""The periodic work of the gateway core, as Celery tasks (see CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from payments.services import webhook_events_prune


@shared_task(name="payments.prune_webhook_events", ignore_result=True)
def prune_webhook_events() -> int:
    """Delete applied, ignored and rejected inbox rows older than WEBHOOK_PRUNE_DAYS, in
    small batches that skip rows another run holds (safe with two beats)."""
    before = timezone.now() - timedelta(days=settings.WEBHOOK_PRUNE_DAYS)
    return sum(webhook_events_prune(before=before).values())
