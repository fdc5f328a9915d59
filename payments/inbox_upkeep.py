"""The webhook inbox's upkeep: which stored events a sweep sends again, and pruning
what nothing needs any more. Re-exported by ``payments.services``."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from payments.models import InboxStatus, WebhookEvent

logger = logging.getLogger("payments.services")

# Statuses an event may be applied again from.
REAPPLICABLE = (InboxStatus.RECEIVED, InboxStatus.FAILED)


def webhook_events_due(
    *,
    received_before: datetime,
    received_after: datetime,
    failed_before: datetime,
    max_attempts: int,
    limit: int,
) -> list[int]:
    """Inbox rows no task is known to hold, oldest first: received between
    ``received_after`` and ``received_before`` and not sent again since
    ``received_before``; and failed, last tried (or sent again) before
    ``failed_before``, with fewer than ``max_attempts`` tries. Each is stamped
    ``processed_at`` now, so a backlog is sent again once per period, not on every
    sweep."""
    received = WebhookEvent.objects.filter(
        Q(processed_at__isnull=True) | Q(processed_at__lt=received_before),
        status=InboxStatus.RECEIVED,
        received_at__lt=received_before,
        received_at__gte=received_after,
    )
    failed = WebhookEvent.objects.filter(
        status=InboxStatus.FAILED, processed_at__lt=failed_before, attempts__lt=max_attempts
    )
    pks = list(received.order_by("received_at").values_list("pk", flat=True)[:limit])
    pks += failed.order_by("received_at").values_list("pk", flat=True)[: limit - len(pks)]
    if pks:
        WebhookEvent.objects.filter(pk__in=pks, status__in=REAPPLICABLE).update(
            processed_at=timezone.now()
        )
    return pks


# ---- pruning the inbox ----

# What nothing needs any more; received and failed events still have to be applied.
PRUNABLE_STATUSES = (InboxStatus.APPLIED, InboxStatus.IGNORED, InboxStatus.REJECTED)


def webhook_events_prunable(*, before: datetime) -> QuerySet[WebhookEvent]:
    """Inbox rows received before ``before`` whose status is applied, ignored or rejected."""
    return WebhookEvent.objects.filter(status__in=PRUNABLE_STATUSES, received_at__lt=before)


def webhook_events_count(queryset: QuerySet[WebhookEvent]) -> Counter[tuple[str, str]]:
    """How many rows of ``queryset`` per (status, channel)."""
    rows = queryset.order_by().values_list("status", "channel").annotate(n=Count("pk"))
    return Counter({(status, channel): n for status, channel, n in rows})


def webhook_events_prune(*, before: datetime, batch_size: int = 1000) -> Counter[tuple[str, str]]:
    """Delete the prunable rows received before ``before``: ``batch_size`` primary keys
    per transaction, so no lock is held for long and other writers go on. How many were
    deleted per (status, channel).

    Rows are locked (skipping rows another transaction holds) before they are deleted,
    so a row whose status changes meanwhile is never deleted by mistake.
    """
    deleted: Counter[tuple[str, str]] = Counter()
    # No row received before ``before`` has a greater key: the scan stops there.
    newest = WebhookEvent.objects.filter(received_at__lt=before).aggregate(pk=Max("pk"))["pk"]
    last_pk = 0
    while newest is not None:
        with transaction.atomic():
            batch = list(
                webhook_events_prunable(before=before)
                .filter(pk__gt=last_pk, pk__lte=newest)
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", "status", "channel")[:batch_size]
            )
            if not batch:
                break
            WebhookEvent.objects.filter(pk__in=[pk for pk, _, _ in batch]).delete()
        deleted.update((status, channel) for _, status, channel in batch)
        last_pk = batch[-1][0]
        logger.info(
            "webhook events pruned: %d",
            len(batch),
            extra={"before": before.isoformat(), "last_pk": last_pk},
        )
    return deleted
