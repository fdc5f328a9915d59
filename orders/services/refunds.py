"""Refunds asked for: the amount checked against what is refundable, the
approval threshold for staff refunds, and the provider asked outside any lock.

A refund is written pending under the order's lock and committed; the provider is
called after, and its answer applied by ``refund_apply``. Only one process sends a
given refund at a time (``_refund_claim``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders.errors import (
    ApprovalAlreadyDecided,
    OrderNotRefundable,
    RefundConfirmationStale,
    RefundCurrencyMismatch,
    RefundExceedsRefundable,
)
from orders.models import (
    ApprovalStatus,
    Order,
    OrderEventKind,
    Refund,
    RefundApproval,
    RefundStatus,
)
from orders.selectors import amount_total, order_awaiting_approval, order_refundable_amount
from orders.services.lifecycle import (
    MONEY_KEPT,
    _lock,
    attempt_provider,
    order_event_write,
    order_refusal_write,
    refund_answer_about,
    refund_provider,
)
from orders.services.refund_results import _paying_attempt, _refund_note, refund_apply
from payments import registry
from payments.providers.base import (
    REFUND_FAILED,
    ProviderError,
    ProviderRequestRefused,
    RefundRequest,
    RefundState,
)
from payments_project.errors import InvalidInput
from payments_project.money import to_major, to_minor

# The package keeps the one logger name it had as a module.
logger = logging.getLogger("orders.services")


# How long one process may take to hear back from the provider about a refund before
# another (reconciliation on another machine) may look it up and send it again.
SUBMIT_LEASE = timedelta(minutes=2)


def refund_amount_checked(locked: Order, amount: Decimal | None) -> Decimal:
    """The amount to refund (default: all that is refundable), checked against what is
    refundable now. Call it holding the order's lock."""
    refundable = order_refundable_amount(locked)
    amount = refundable if amount is None else amount
    to_minor(amount, locked.currency)  # refuses what does not fit the currency
    if amount <= 0 or amount > refundable:
        raise RefundExceedsRefundable(
            f"Refund of {amount} {locked.currency.upper()} refused: {refundable} is "
            "refundable (refunds pending or awaiting approval included).",
            refundable=str(refundable),
            currency=locked.currency,
        )
    return amount


def approval_threshold(currency: str) -> int | None:
    """The staff refund total (minor units) above which approval is needed for an
    order in ``currency``; None where every refund needs approval."""
    thresholds = settings.REFUND_APPROVAL_THRESHOLDS
    return thresholds.get(currency.lower(), thresholds.get("*"))


def staff_refund_total(locked: Order) -> Decimal:
    """What staff have refunded and asked for on an order: refunds pending or
    succeeded and refunds awaiting approval (automatic refunds of duplicate payments
    are not theirs)."""
    refunds = locked.refunds.filter(
        status__in=(RefundStatus.PENDING, RefundStatus.SUCCEEDED), duplicate_payment=False
    )
    return amount_total(refunds) + order_awaiting_approval(locked)


def refund_needs_approval(locked: Order, amount: Decimal) -> bool:
    """Whether a staff refund of ``amount`` would bring the order's staff refund total
    past its currency's threshold (five refunds of 100 count as one of 500)."""
    threshold = approval_threshold(locked.currency)
    if threshold is None:
        return True
    total = staff_refund_total(locked) + amount
    return to_minor(total, locked.currency) > threshold


def refund_request(*, order: Order, **options: Any) -> Refund | RefundApproval:
    """Refund part or all of a paid order (``_refund_request``); a refusal for the
    currency is written in the order's history, outside the refused transaction."""
    try:
        return _refund_request(order=order, **options)
    except RefundCurrencyMismatch as mismatch:
        order_refusal_write(
            order=order,
            kind=OrderEventKind.REFUND,
            error=mismatch,
            source=options.get("source", "api"),
            label="refund refused",
            actor=options.get("actor"),
        )
        raise


def _refund_request(
    *,
    order: Order,
    amount: Decimal | None = None,
    reason: str,
    actor: Any = None,
    source: str = "api",
    approval: RefundApproval | None = None,
    approved_by: Any = None,
    expected_refundable: Decimal | None = None,
) -> Refund | RefundApproval:
    """Refund part or all of a paid order: a pending row under the order's lock, then
    the provider outside it. Concurrent requests can never refund more than was paid.

    ``expected_refundable``: what the person confirming saw left to refund; if it has
    changed once the order is locked (the same confirmation sent twice, or another
    refund meanwhile), nothing is done (``RefundConfirmationStale``).

    Every door (API, admin, commands) comes here: a refund that brings what staff have
    refunded and asked for on the order past its currency's threshold is held as a
    ``RefundApproval`` instead, with no provider call, until another staff member
    approves it: ``approval`` is then decided (by ``approved_by``) in the same
    transaction that writes the refund, and the refund is sent.
    """
    if not reason or not reason.strip():
        raise InvalidInput("A refund needs a reason.", code="reason_required")
    reason = reason.strip()[:255]
    with transaction.atomic():
        locked = _lock(order)
        if approval is not None:
            approval = refund_approval_decide(
                approval=approval, actor=approved_by, status=ApprovalStatus.APPROVED, source=source
            )
        if locked.status not in MONEY_KEPT:
            raise OrderNotRefundable(
                f"Order {locked.order_bid} is {locked.status_name}; only a paid order can be "
                "refunded.",
                order_bid=locked.order_bid,
                status=locked.status_name,
            )
        if not locked.paid_price:
            raise OrderNotRefundable(
                f"Order {locked.order_bid} was paid nothing (free, granted, or fully "
                "discounted): there is nothing to refund.",
                order_bid=locked.order_bid,
                status=locked.status_name,
            )
        if expected_refundable is not None:
            refundable = order_refundable_amount(locked)
            if refundable != expected_refundable:
                raise RefundConfirmationStale(
                    f"Order {locked.order_bid} has {refundable} left to refund, not the "
                    f"{expected_refundable} confirmed: it changed since (another refund, or "
                    "the same confirmation sent twice). Nothing was sent.",
                    order_bid=locked.order_bid,
                    refundable=str(refundable),
                    confirmed=str(expected_refundable),
                )
        amount = refund_amount_checked(locked, amount)
        attempt = _paying_attempt(registry.get_provider_any(locked.payment_channel), locked)
        if attempt is None:
            raise OrderNotRefundable(
                f"Order {locked.order_bid} has no paid {locked.payment_channel} attempt to "
                "refund (it was paid without a provider).",
                order_bid=locked.order_bid,
            )
        # Refused now (409) when the merchant account that took the money is not known
        # here: the refund is sent with that account's keys, or not at all.
        attempt_provider(locked.payment_channel, attempt)
        if attempt.currency_code != locked.currency.lower():
            raise RefundCurrencyMismatch(
                f"Order {locked.order_bid} is in {locked.currency.upper()} but its payment "
                f"{attempt.attempt_bid} was made in {attempt.currency_code.upper()}: nothing "
                "was sent. Correct the order's currency before refunding it.",
                order_bid=locked.order_bid,
                order_currency=locked.currency,
                payment_currency=attempt.currency_code,
            )
        if approval is None and refund_needs_approval(locked, amount):
            return _approval_request(
                locked, amount=amount, reason=reason, actor=actor, source=source
            )
        refund = Refund.objects.create(
            order=locked,
            payment_channel=locked.payment_channel,
            attempt_bid=attempt.attempt_bid,
            amount=amount,
            currency=locked.currency,
            reason=reason,
            requested_by=actor if getattr(actor, "pk", None) else None,
        )
        order_event_write(
            order=locked,
            kind=OrderEventKind.REFUND,
            message=f"refund {refund.refund_bid} of {amount} {locked.currency.upper()} "
            f"requested: {refund.reason}",
            source=source,
            actor=actor,
            data={"refund_bid": refund.refund_bid},
        )
        if approval is not None:
            RefundApproval.objects.filter(pk=approval.pk).update(refund=refund)
            approval.refund = refund
    refund_submit(refund=refund, provider_payment_id=attempt.provider_payment_id)
    refund.refresh_from_db()
    return refund


# How each decision reads in the order's history.
DECIDED = {
    ApprovalStatus.APPROVED: "approved",
    ApprovalStatus.REJECTED: "rejected",
    ApprovalStatus.FAILED: "approved but refused",
}


def refund_approval_decide(
    *,
    approval: RefundApproval,
    actor: Any,
    status: str,
    source: str,
    note: str = "",
    detail: str = "",
) -> RefundApproval:
    """Decide an awaiting approval and write the decision in the order's history
    (``detail`` after it): the order's lock, then the approval's; refuses one already
    decided. Part of the caller's transaction."""
    _lock(approval.order.order_bid)
    locked = RefundApproval.objects.select_for_update().get(pk=approval.pk)
    if locked.status != ApprovalStatus.AWAITING:
        raise ApprovalAlreadyDecided(
            f"Approval {locked.pk} is already {locked.get_status_display()}.",
            approval=locked.pk,
        )
    locked.status = status
    locked.decided_by = actor if getattr(actor, "pk", None) else None
    locked.decided_at = timezone.now()
    locked.note = note
    locked.save(update_fields=["status", "decided_by", "decided_at", "note"])
    order_event_write(
        order=locked.order,
        kind=OrderEventKind.REFUND,
        message=f"refund of {locked.amount} {locked.currency.upper()} {DECIDED[status]} "
        f"(approval {locked.pk})" + (f": {detail}" if detail else ""),
        source=source,
        actor=actor,
        data={"approval": locked.pk},
    )
    return locked


def _approval_request(
    locked: Order, *, amount: Decimal, reason: str, actor: Any, source: str
) -> RefundApproval:
    if not getattr(actor, "pk", None):
        raise InvalidInput(
            "A refund above the approval threshold must be asked for by a staff user.",
            code="approval_requires_staff",
        )
    approval = RefundApproval.objects.create(
        order=locked, amount=amount, currency=locked.currency, reason=reason, requested_by=actor
    )
    threshold = approval_threshold(locked.currency)
    limit = (
        f"the {to_major(threshold, locked.currency)} {locked.currency.upper()} threshold"
        if threshold is not None
        else f"no threshold is set for {locked.currency.upper()}"
    )
    order_event_write(
        order=locked,
        kind=OrderEventKind.REFUND,
        message=f"refund of {amount} {locked.currency.upper()} awaits a second staff "
        f"member's approval (approval {approval.pk}; {limit}): {reason}",
        source=source,
        actor=actor,
        data={"approval": approval.pk},
    )
    return approval


def _duplicate_payment_refund(
    *, channel: str, order: Order, attempt, amount: Decimal, source: str
) -> None:
    """A second payment for an order already paid: give it back, automatically.

    The refund row is written with the payment (under the order's lock); the provider
    is asked once the transaction has committed. It is not part of the order's totals.
    """
    refund = Refund.objects.create(
        order=order,
        payment_channel=channel,
        attempt_bid=attempt.attempt_bid,
        amount=amount,
        currency=attempt.currency_code,
        reason=f"duplicate payment: order already {order.status_name}",
        duplicate_payment=True,
    )
    order_event_write(
        order=order,
        kind=OrderEventKind.PAYMENT,
        message=(
            f"second payment of {amount} {attempt.currency_code.upper()} through "
            f"{attempt.attempt_bid} for an order already {order.status_name}: refunded "
            f"automatically as {refund.refund_bid}"
        ),
        source=source,
        data={"attempt_bid": attempt.attempt_bid, "duplicate_payment": True},
    )
    _submit_after_commit(refund, attempt.provider_payment_id)


def _submit_after_commit(refund: Refund, payment_id: str) -> None:
    """Send a refund once the transaction that wrote it has committed; a provider
    error leaves it pending for reconciliation."""

    def submit() -> None:
        try:
            refund_submit(refund=refund, provider_payment_id=payment_id)
        except ProviderError:
            logger.warning(
                "refund %s not sent yet",
                refund.refund_bid,
                extra={
                    "order_bid": refund.order.order_bid,
                    "attempt_bid": refund.attempt_bid,
                    "refund_bid": refund.refund_bid,
                    "channel": refund.payment_channel,
                },
            )

    transaction.on_commit(submit)


def _refund_claim(refund: Refund) -> bool:
    """Claim the right to call the provider for a pending refund, without holding a
    lock across the call: an atomic conditional update that one process wins."""
    now = timezone.now()
    return (
        Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING)
        .filter(Q(submitted_at__isnull=True) | Q(submitted_at__lt=now - SUBMIT_LEASE))
        .update(submitted_at=now)
        == 1
    )


def refund_submit(*, refund: Refund, provider_payment_id: str, retry: bool = False) -> None:
    """Ask the provider to refund; its answer (or a later webhook) settles the row.

    Only one process sends a given refund at a time (see ``_refund_claim``). On a retry
    the provider is first asked whether the refund already exists, since not every
    provider has idempotency keys. The refund is marked failed only when the provider
    clearly refused it; any other error leaves it pending, to be looked up again.
    """
    if not _refund_claim(refund):
        return
    provider = refund_provider(refund)
    request = RefundRequest(
        channel=refund.payment_channel,
        refund_bid=refund.refund_bid,
        provider_payment_id=provider_payment_id,
        amount=to_minor(refund.amount, refund.currency),
        currency=refund.currency,
        reason=refund.reason,
    )
    try:
        state = provider.find_refund(provider_payment_id, refund.refund_bid) if retry else None
    except ProviderError as exc:
        _refund_note(refund, f"could not be looked up, will retry: {exc.message}")
        raise
    if state is None:
        try:
            state = provider.refund(request)
        except ProviderRequestRefused as exc:
            refund_apply(
                channel=refund.payment_channel,
                state=RefundState(
                    provider_refund_id=refund.provider_refund_id or "",
                    provider_payment_id=provider_payment_id,
                    state=REFUND_FAILED,
                    amount=request.amount,
                    currency=refund.currency,
                    refund_bid=refund.refund_bid,
                    failure_code=str(exc.details.get("provider_code") or exc.code),
                    failure_message=exc.message,
                ),
                source=refund.payment_channel,
                refused_now=True,
            )
            raise
        except ProviderError as exc:
            # Unreachable, or an answer that cannot be read: the refund may exist.
            _refund_note(refund, f"not confirmed, will look it up and retry: {exc.message}")
            raise
    state = refund_answer_about(refund, state)
    refund_apply(channel=refund.payment_channel, state=state, source=refund.payment_channel)
