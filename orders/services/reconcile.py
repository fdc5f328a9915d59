"""Reconciliation: settle what providers never reported.

Pending attempts and refunds older than a threshold are fetched from their provider and
applied, refunds that never reached it sent again, failed inbox events applied again.
Rows are claimed first, so runs on several machines take disjoint rows; what never
settles is listed under Needs attention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders.models import Attention, Order, Refund, RefundStatus
from orders.services.attention import _left_to_staff, _settled, _unsettled
from orders.services.lifecycle import (
    S,
    attempt_fetched,
    attempt_provider,
    refund_answer_about,
    refund_provider,
)
from orders.services.payment_results import (
    _attempt_close,
    _attempt_close_orphan,
    _check_money,
    payment_apply,
)
from orders.services.refund_results import refund_apply
from orders.services.refunds import SUBMIT_LEASE, refund_submit
from payments import registry
from payments.models import AttemptStatus, InboxStatus, WebhookEvent
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_SUCCEEDED,
)
from payments.services import inbox_apply, stored_event
from payments_project.money import to_major

# How long a failed attempt is still asked about, and a failed inbox event re-applied.
RETRY_FAILED_FOR = timedelta(days=1)
RETRY_EVENTS_FOR = timedelta(days=3)
# How long a row claimed by one run (reconcile_payments on one machine) is left alone by
# the runs of other machines; it covers a whole run, whose rows are claimed up front.
CLAIM_LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class Checked:
    """One row a reconciliation or expiry run looked at, and what came of it."""

    kind: str  # "attempt", "refund", "inbox event", "order"
    channel: str
    what: str
    outcome: str  # "settled" (a dry run: would be), "unchanged", "error"
    detail: str = ""


@dataclass
class ReconcileReport:
    checked: int = 0
    settled: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    rows: list[Checked] = field(default_factory=list)

    def add_error(self, what: str, exc: Exception) -> None:
        self.errors.append(f"{what}: {getattr(exc, 'code', type(exc).__name__)}: {exc}")


@dataclass(frozen=True)
class _Work:
    kind: str
    channel: str
    what: str
    row: Any
    pending: Any
    settle: Any  # () -> None: settle the row
    check: Any  # () -> str: what settling would change ("" for nothing); no writes


def _claim(queryset, *, stamp: str, limit: int, dry_run: bool, claim_for: timedelta | None):
    """The rows of ``queryset`` this run takes, at most ``limit``.

    Each row is claimed in its own short transaction: locked by primary key with SKIP
    LOCKED, checked again, and stamped; the lock is gone before any provider is called.
    A row another run holds locked is skipped, and with ``claim_for`` so is one whose
    stamp moved within that time (claimed by another run, or just checked). Locking by
    primary key matters: InnoDB would lock every row an ORDER BY ... LIMIT query sorts,
    and a concurrent run would find nothing to take. On SQLite the lock is a no-op. A
    dry run claims nothing.
    """
    now = timezone.now()
    if claim_for:
        queryset = queryset.filter(
            Q(**{f"{stamp}__isnull": True}) | Q(**{f"{stamp}__lt": now - claim_for})
        )
    if dry_run:
        return list(queryset[:limit])
    # More candidates than the limit, since other runs may take some of them.
    candidates = list(queryset.values_list("pk", flat=True)[: limit * 2])
    claimed = []
    for pk in candidates:
        if len(claimed) == limit:
            break
        with transaction.atomic():
            row = queryset.select_for_update(skip_locked=True).filter(pk=pk).first()
            if row is None:
                continue
            queryset.model.objects.filter(pk=pk).update(**{stamp: now})
        setattr(row, stamp, now)
        claimed.append(row)
    return claimed


def payments_reconcile(
    *,
    older_than_seconds: int = 300,
    limit: int = 500,
    dry_run: bool = False,
    claim_for: timedelta | None = None,
    on_row=None,
) -> ReconcileReport:
    """Settle what providers never reported: pending attempts and refunds older than
    the threshold are fetched from their provider and applied; refunds that never
    reached the provider are sent again (after asking whether they exist there).

    The rows are claimed first (see ``_claim``), so runs on several machines take
    disjoint rows (the command passes ``claim_for=CLAIM_LEASE``). ``dry_run`` fetches
    the providers' state and reports what would change, writing nothing.
    ``on_row(checked, done, total)`` follows progress.
    """
    report = ReconcileReport(dry_run=dry_run)
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    now = timezone.now()
    claim = {"limit": limit, "dry_run": dry_run, "claim_for": claim_for}
    work: list[_Work] = []
    for channel in registry.enabled_channels():
        provider = registry.get_provider_any(channel)
        # Pending attempts, and failed ones of the last day (a declined card may be
        # tried again on the same PaymentIntent); least recently checked first, so rows
        # that never settle cannot hold newer ones back (each claim updates the row).
        pending = (
            provider.attempt_model.objects.filter(created_at__lte=cutoff)
            .filter(
                Q(status=AttemptStatus.PENDING)
                | Q(status=AttemptStatus.FAILED, created_at__gte=now - RETRY_FAILED_FOR)
            )
            .exclude(
                **{f"{provider.attempt_model.attempt_bid_field}__in": _left_to_staff("attempt")}
            )
            .order_by("updated_at", "id")
        )
        for attempt in _claim(pending, stamp="updated_at", **claim):
            work.append(_attempt_work(channel, attempt))
    refunds = (
        Refund.objects.filter(
            status=RefundStatus.PENDING,
            created_at__lte=cutoff,
            payment_channel__in=registry.enabled_channels(),
        )
        .exclude(refund_bid__in=_left_to_staff("refund"))
        .order_by("updated_at", "id")
    )
    for refund in _claim(refunds, stamp="updated_at", **claim):
        work.append(_refund_work(refund))
    # Events kept for a retry that the provider stopped sending.

    stuck = (
        WebhookEvent.objects.filter(
            status=InboxStatus.FAILED,
            received_at__lte=cutoff,
            received_at__gte=now - RETRY_EVENTS_FOR,
            channel__in=registry.enabled_channels(),
        )
        .exclude(pk__in=_left_to_staff("event"))
        .order_by("processed_at", "id")
    )
    for event in _claim(stuck, stamp="processed_at", **claim):
        work.append(_event_work(event))
    for done, item in enumerate(work, start=1):
        checked = _reconcile_one(report, item)
        if on_row is not None:
            on_row(checked, done, len(work))
    return report


def _attempt_work(channel: str, attempt) -> _Work:
    """Each attempt is asked about with the keys it was made with (a creator's own
    merchant account, or the platform's): an unknown account is this row's error."""
    return _Work(
        "attempt",
        channel,
        f"attempt {attempt.attempt_bid}",
        row=attempt,
        pending=attempt.status,
        settle=lambda: _attempt_reconcile(attempt_provider(channel, attempt), attempt),
        check=lambda: _attempt_check(attempt_provider(channel, attempt), attempt),
    )


def _refund_work(refund: Refund) -> _Work:
    return _Work(
        "refund",
        refund.payment_channel,
        f"refund {refund.refund_bid}",
        row=refund,
        pending=RefundStatus.PENDING,
        settle=lambda: _refund_reconcile(refund),
        check=lambda: _refund_check(refund),
    )


def _event_work(event) -> _Work:

    return _Work(
        "inbox event",
        event.channel,
        f"inbox event {event.channel}:{event.event_id}",
        row=event,
        pending=InboxStatus.FAILED,
        settle=lambda: _event_reconcile(event),
        check=lambda: _event_check(event),
    )


def attention_subject_settle(attention: Attention) -> bool:
    """Reconciliation's work on one subject listed for staff, now (a staff retry);
    True when it settled. A failure counts as a try, like any run's."""
    if attention.subject_kind == "attempt":
        provider = registry.get_provider_any(attention.channel)
        item = _attempt_work(
            attention.channel, provider.attempts_for(attempt_bid=attention.subject_bid).get()
        )
    elif attention.subject_kind == "refund":
        item = _refund_work(Refund.objects.get(refund_bid=attention.subject_bid))
    else:
        item = _event_work(WebhookEvent.objects.get(pk=int(attention.subject_bid)))
    return _reconcile_one(ReconcileReport(), item).outcome == "settled"


def _pending_too_long(item: _Work) -> bool:
    born = getattr(item.row, "created_at", None)
    limit = timedelta(hours=settings.RECONCILE_MAX_PENDING_HOURS)
    return born is not None and born < timezone.now() - limit


def _reconcile_one(report: ReconcileReport, item: _Work) -> Checked:
    report.checked += 1
    detail = ""
    try:
        if report.dry_run:
            detail = item.check()
            changed = bool(detail)
        else:
            item.settle()
    except Exception as exc:  # one bad row must not stop the run
        report.add_error(item.what, exc)
        if not report.dry_run:
            _mark_checked(item.row)
            if _unsettled(item, report.errors[-1]):
                report.errors[-1] += " (now listed under Needs attention)"
        checked = Checked(item.kind, item.channel, item.what, "error", report.errors[-1])
        report.rows.append(checked)
        return checked
    if not report.dry_run:
        item.row.refresh_from_db()
        changed = item.row.status != item.pending
        if changed:
            detail = f"now {item.row.get_status_display()}"
            _settled(item)
        elif item.kind == "inbox event":
            if _unsettled(item, item.row.last_error):
                detail = "listed under Needs attention"
        elif _pending_too_long(item):
            answer = f"still {item.row.get_status_display()} at the provider"
            if _unsettled(item, answer, give_up=True):
                detail = "listed under Needs attention"
    if changed:
        report.settled += 1
    else:
        report.unchanged += 1
    checked = Checked(
        item.kind, item.channel, item.what, "settled" if changed else "unchanged", detail
    )
    report.rows.append(checked)
    return checked


def _mark_checked(row) -> None:
    """Move a row that could not be settled to the back of the next run's queue."""
    stamp = "processed_at" if hasattr(row, "processed_at") else "updated_at"
    type(row).objects.filter(pk=row.pk).update(**{stamp: timezone.now()})


def _attempt_reconcile(provider, attempt) -> None:
    if not attempt.provider_payment_id:
        # The process stopped between writing the attempt and recording the provider's
        # answer: the client never got what it needs to pay, so nothing can be paid.
        _attempt_close_orphan(provider, attempt)
        return
    state = attempt_fetched(provider, attempt)
    payment_apply(channel=provider.channel, state=state, source=f"{provider.channel}:reconcile")
    if state.state in (PAYMENT_PENDING, PAYMENT_FAILED):
        # Maybe still payable at the provider: close it if its order is dead (the close
        # that followed the cancellation or time-out failed).
        order = Order.objects.filter(order_bid=attempt.order_bid).first()
        if order is not None and order.status in (S.TIMEOUT, S.CANCELLED):
            _attempt_close(provider, attempt, source=f"{provider.channel}:reconcile")


def _refund_reconcile(refund: Refund) -> None:
    provider = refund_provider(refund)
    attempt = provider.attempts_for(attempt_bid=refund.attempt_bid).get()
    if refund.provider_refund_id:
        state = provider.fetch_refund(attempt.provider_payment_id, refund.provider_refund_id)
        state = refund_answer_about(refund, state)
        refund_apply(channel=refund.payment_channel, state=state, source="reconcile")
    else:
        refund_submit(refund=refund, provider_payment_id=attempt.provider_payment_id, retry=True)


# ---- what reconciliation would change (dry run: the provider is asked, nothing written) ----


def _attempt_check(provider, attempt) -> str:
    if not attempt.provider_payment_id:
        if attempt.status == AttemptStatus.PENDING:
            return "would close: the provider's answer was never recorded"
        return ""
    state = attempt_fetched(provider, attempt)
    _check_money(
        attempt=attempt, amount=state.amount, currency=state.currency, what=provider.channel
    )
    if state.state == PAYMENT_SUCCEEDED and attempt.status not in (
        AttemptStatus.PAID,
        AttemptStatus.REFUNDED,
    ):
        paid = to_major(state.amount, state.currency)
        return f"would record the payment of {paid} {state.currency.upper()}"
    if state.state in (PAYMENT_FAILED, PAYMENT_CLOSED) and attempt.status == AttemptStatus.PENDING:
        return f"would mark it {state.state} (the provider says so)"
    return ""


def _refund_check(refund: Refund) -> str:
    provider = refund_provider(refund)
    attempt = provider.attempts_for(attempt_bid=refund.attempt_bid).get()
    if refund.provider_refund_id:
        state = provider.fetch_refund(attempt.provider_payment_id, refund.provider_refund_id)
    else:
        state = provider.find_refund(attempt.provider_payment_id, refund.refund_bid)
        if state is None:
            lease_over = (
                refund.submitted_at is None or refund.submitted_at < timezone.now() - SUBMIT_LEASE
            )
            return "would send it to the provider again" if lease_over else ""
    if state.state == REFUND_SUCCEEDED and refund.status != RefundStatus.SUCCEEDED:
        return "would mark it succeeded (the provider says so)"
    if state.state == REFUND_FAILED and refund.status == RefundStatus.PENDING:
        return f"would mark it failed: {state.failure_code} {state.failure_message}".strip()
    return ""


def _event_reconcile(event) -> None:

    inbox_apply(row=event)


def _event_check(event) -> str:
    """A stored event is parsed again (a bad one is an error); applying it is left to a
    real run, since only applying tells whether it applies now."""
    return f"would apply the stored {stored_event(event).kind} event again"
