"""Needs attention: what the service lists for staff because it cannot settle it
on its own (a duplicate purchase kept, a refund that failed or conflicts, a row
reconciliation gave up on), and reconciliation's count of tries before it gives up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders.models import Attention, AttentionKind, AttentionStatus, Order, OrderEventKind
from orders.services.lifecycle import attention_open, order_event_write  # noqa: F401

if TYPE_CHECKING:
    from orders.services.reconcile import _Work


def _left_to_staff(subject_kind: str):
    """The subjects of one kind that reconciliation gave up on, until staff act."""
    return Attention.objects.filter(
        kind=AttentionKind.UNSETTLED, status=AttentionStatus.OPEN, subject_kind=subject_kind
    ).values("subject_bid")


def _subject(item: _Work) -> tuple[str, str, Order | None]:
    row = item.row
    if item.kind == "attempt":
        return "attempt", row.attempt_bid, Order.objects.filter(order_bid=row.order_bid).first()
    if item.kind == "refund":
        return "refund", row.refund_bid, row.order
    order = Order.objects.filter(order_bid=row.order_bid).first() if row.order_bid else None
    return "event", str(row.pk), order


def _unsettled(item: _Work, answer: str, *, give_up: bool = False) -> bool:
    """Count a reconciliation try that did not settle ``item``; past
    RECONCILE_MAX_TRIES (or at once with ``give_up``) it is listed for staff and left
    alone. True when it was listed now."""
    subject_kind, subject_bid, order = _subject(item)
    with transaction.atomic():
        row, _ = Attention.objects.select_for_update().get_or_create(
            kind=AttentionKind.UNSETTLED,
            subject_kind=subject_kind,
            subject_bid=subject_bid,
            defaults={
                "status": AttentionStatus.WATCHING,
                "order": order,
                "channel": item.channel,
                "reason": f"{item.what}: reconciliation cannot settle it",
            },
        )
        if row.status == AttentionStatus.RESOLVED:
            row.status, row.tries = AttentionStatus.WATCHING, 0
        row.tries += 1
        row.last_answer = answer[:5000]
        listed = row.status == AttentionStatus.WATCHING and (
            give_up or row.tries >= settings.RECONCILE_MAX_TRIES
        )
        if listed:
            row.status = AttentionStatus.OPEN
            row.reason = (
                f"{item.what}: not settled after {row.tries} reconciliation "
                f"{'try' if row.tries == 1 else 'tries'}"
                + (" and past RECONCILE_MAX_PENDING_HOURS" if give_up else "")
            )[:500]
        row.save()
        if listed and order is not None:
            order_event_write(
                order=order,
                kind=OrderEventKind.NOTE,
                message=f"needs attention: {row.reason}; last answer: {answer}",
                source="reconcile",
                data={"attention": row.pk},
            )
    return listed


def _settled(item: _Work) -> None:
    subject_kind, subject_bid, _ = _subject(item)
    Attention.objects.filter(
        kind=AttentionKind.UNSETTLED, subject_kind=subject_kind, subject_bid=subject_bid
    ).exclude(status=AttentionStatus.RESOLVED).update(
        status=AttentionStatus.RESOLVED, note="settled", resolved_at=timezone.now()
    )
