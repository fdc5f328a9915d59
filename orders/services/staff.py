"""What support staff do to orders from the admin, beyond the API's services.

Refunds asked for in the admin go through ``refund_request`` (same locks, limits and
approval thresholds as the API); those that bring the order's staff refund total past
``REFUND_APPROVAL_THRESHOLDS`` are first held as a ``RefundApproval`` that a second staff
member approves or rejects. Every function here leaves an ``OrderEvent`` naming the
staff user.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from orders.errors import (
    AlreadyPurchased,
    ApprovalNotAllowed,
    OrderNotRefundable,
    RefundExceedsRefundable,
    TransitionNotAllowed,
)
from orders.models import (
    ApprovalStatus,
    Attention,
    AttentionKind,
    AttentionStatus,
    Order,
    OrderEventKind,
    Refund,
    RefundApproval,
    RefundStatus,
)
from orders.services.lifecycle import (
    S,
    _lock,
    _purchase_lock,
    attempt_provider,
    order_event_write,
    order_set_status,
)
from orders.services.payments import payment_sync
from orders.services.reconcile import attention_subject_settle
from orders.services.refunds import (
    approval_threshold,
    refund_approval_decide,
    refund_request,
    refund_submit,
)
from payments import registry
from payments.providers.base import REFUND_FAILED
from payments_project.errors import InvalidInput
from payments_project.money import format_money, to_major

MARK_PAID_FROM = (S.INIT, S.UNPAID, S.TIMEOUT)


def staff_source(actor: Any) -> str:
    return f"admin:{getattr(actor, 'username', '') or 'unknown'}"


def approval_threshold_display(order: Order) -> str:
    """The approval rule of the order's currency, as a sentence for the refund form."""
    threshold = approval_threshold(order.currency)
    code = order.currency.upper()
    if threshold is None:
        return (
            f"Every refund of a {code} order waits for a support lead's approval "
            f"(REFUND_APPROVAL_THRESHOLDS sets no amount for {code})."
        )
    limit = format_money(to_major(threshold, order.currency), order.currency)
    return (
        f"Once staff refunds on one order come to more than {limit} in all, "
        "a refund waits for a support lead's approval."
    )


def refund_request_staff(
    *,
    order: Order,
    amount: Decimal | None,
    reason: str,
    actor: Any,
    expected_refundable: Decimal | None = None,
) -> Refund | RefundApproval:
    """A refund asked for in the admin: requested at once, or held for approval, by
    ``refund_request`` (the same door as the API's, with the same lock,
    limits and approval threshold), against what the confirmation page showed left to
    refund (``expected_refundable``)."""
    return refund_request(
        order=order,
        amount=amount,
        reason=reason,
        actor=actor,
        source=staff_source(actor),
        expected_refundable=expected_refundable,
    )


def refund_approve(*, approval: RefundApproval, actor: Any) -> Refund:
    """A second staff member approves: in one transaction under the order's lock, the
    approval is decided and the pending refund written (so no other refund can slip
    between the two past the threshold); the provider is then asked as for any refund."""
    if actor is None or actor.pk == approval.requested_by_id:
        raise ApprovalNotAllowed(
            "A refund must be approved by another staff member than the one who asked.",
            approval=approval.pk,
        )
    try:
        return refund_request(
            order=approval.order,
            amount=approval.amount,
            reason=approval.reason,
            actor=approval.requested_by,
            source=f"{staff_source(actor)} (approval {approval.pk})",
            approval=approval,
            approved_by=actor,
        )
    except (OrderNotRefundable, RefundExceedsRefundable) as exc:
        with transaction.atomic():
            refund_approval_decide(
                approval=approval,
                actor=actor,
                status=ApprovalStatus.FAILED,
                source=staff_source(actor),
                note=f"{exc.code}: {exc.message}",
                detail=exc.message,
            )
        raise


@transaction.atomic
def refund_reject(*, approval: RefundApproval, actor: Any, note: str = "") -> RefundApproval:
    """Reject (or, for the requester, withdraw) a refund awaiting approval."""
    return refund_approval_decide(
        approval=approval,
        actor=actor,
        status=ApprovalStatus.REJECTED,
        source=staff_source(actor),
        note=note,
        detail=note,
    )


def _note(order: Order, actor: Any, message: str, **data: Any) -> None:
    order_event_write(
        order=order,
        kind=OrderEventKind.NOTE,
        message=message,
        source=staff_source(actor),
        actor=actor,
        data=data,
    )


def order_sync_staff(*, order: Order, actor: Any) -> Order:
    """Ask the provider for the order's payment and apply it; noted in its history."""
    _note(order, actor, "sync with the provider asked for")
    return payment_sync(order=order, source=staff_source(actor))


def refund_retry(*, refund: Refund, actor: Any) -> Refund:
    """A failed refund is asked for again (a new refund, same amount and reason); a
    pending one is sent again, after asking the provider whether it exists."""
    if refund.status == RefundStatus.FAILED:
        # Claimed once: a second click, or a second staff member, cannot retry it again.
        claimed = Refund.objects.filter(
            pk=refund.pk, status=RefundStatus.FAILED, retried_at__isnull=True
        ).update(retried_at=timezone.now())
        if not claimed:
            raise InvalidInput(
                f"Refund {refund.refund_bid} was already asked for again.",
                code="refund_not_retryable",
            )
        _note(refund.order, actor, f"retry of failed refund {refund.refund_bid}")
        try:
            if refund.duplicate_payment:
                again = _duplicate_refund_again(refund=refund, actor=actor)
            else:
                # Through the console's own path: the approval threshold applies again.
                again = refund_request_staff(
                    order=refund.order,
                    amount=refund.amount,
                    reason=f"retry of {refund.refund_bid}: {refund.reason}",
                    actor=actor,
                )
        except (OrderNotRefundable, RefundExceedsRefundable, InvalidInput):
            Refund.objects.filter(pk=refund.pk).update(retried_at=None)
            raise
        if isinstance(again, Refund):
            for row in Attention.objects.filter(
                kind__in=(AttentionKind.REFUND_FAILED, AttentionKind.REFUND_REVERSED),
                subject_kind="refund",
                subject_bid=refund.refund_bid,
            ).exclude(status=AttentionStatus.RESOLVED):
                _attention_close(row, actor, f"asked for again as {again.refund_bid}")
        return again
    if refund.status == RefundStatus.PENDING:
        _note(refund.order, actor, f"refund {refund.refund_bid} sent again")
        provider = registry.get_provider_any(refund.payment_channel)
        attempt = provider.attempts_for(attempt_bid=refund.attempt_bid).first()
        if attempt is None or not attempt.provider_payment_id:
            raise OrderNotRefundable(
                f"Refund {refund.refund_bid} names no attempt with a provider payment.",
                refund_bid=refund.refund_bid,
            )
        refund_submit(refund=refund, provider_payment_id=attempt.provider_payment_id, retry=True)
        refund.refresh_from_db()
        return refund
    raise InvalidInput(
        f"Refund {refund.refund_bid} succeeded; there is nothing to retry.",
        code="refund_not_retryable",
    )


def _duplicate_refund_again(*, refund: Refund, actor: Any) -> Refund:
    """A failed refund of a duplicate payment, sent again for the same payment: it stays
    out of the order's totals and never touches the payment that paid the order."""
    provider = registry.get_provider_any(refund.payment_channel)
    attempt = provider.attempts_for(attempt_bid=refund.attempt_bid).first()
    if attempt is None or not attempt.provider_payment_id:
        raise OrderNotRefundable(
            f"Refund {refund.refund_bid} names no attempt with a provider payment.",
            refund_bid=refund.refund_bid,
        )
    with transaction.atomic():
        _lock(refund.order)
        again = Refund.objects.create(
            order=refund.order,
            payment_channel=refund.payment_channel,
            attempt_bid=refund.attempt_bid,
            amount=refund.amount,
            currency=refund.currency,
            reason=f"retry of {refund.refund_bid}: {refund.reason}"[:255],
            duplicate_payment=True,
            requested_by=actor if getattr(actor, "pk", None) else None,
        )
    refund_submit(refund=again, provider_payment_id=attempt.provider_payment_id)
    again.refresh_from_db()
    return again


def order_mark_paid_by_hand(*, order: Order, actor: Any, reason: str) -> Order:
    """The legacy manual flow: an order paid outside any channel is marked paid, for
    its payable price, with the staff user and reason in its history."""
    if not reason or not reason.strip():
        raise InvalidInput("Marking an order paid needs a reason.", code="reason_required")
    reason = reason.strip()
    with transaction.atomic():
        _purchase_lock(user_bid=order.user_bid, product_bid=order.product_bid)
        locked = _lock(order)
        owned = Order.objects.siblings_of(locked, S.PAID).first()
        if owned is not None:
            raise AlreadyPurchased(
                f"The user already owns this product through order {owned.order_bid}.",
                product=locked.product_bid,
                order_bid=owned.order_bid,
            )
        if locked.status not in MARK_PAID_FROM:
            raise TransitionNotAllowed(
                f"Order {locked.order_bid} is {locked.status_name}; only init, unpaid or "
                "timed-out orders are marked paid by hand.",
                order_bid=locked.order_bid,
                status=locked.status_name,
            )
        return order_set_status(
            order=order,
            to=S.PAID,
            source=staff_source(actor),
            actor=actor,
            message=f"marked paid by hand: {reason}",
            data={"manual": True, "reason": reason},
            changes={"paid_price": locked.due_price},
        )


# ---- needs attention ----


def attention_retry(*, attention: Attention, actor: Any) -> Attention:
    """Try again what was listed for staff. Unsettled: reconciliation's work on the
    attempt, refund or inbox event, at once (resolved when it settles, kept open with the
    new answer when not). A failed or reversed refund: asked for again, through the
    approval threshold, once the provider confirms it holds no successful refund for it.
    """
    if attention.status == AttentionStatus.RESOLVED:
        raise InvalidInput(f"{attention} is already resolved.", code="attention_resolved")
    if attention.kind in (AttentionKind.REFUND_REVERSED, AttentionKind.REFUND_FAILED):
        failed = Refund.objects.get(refund_bid=attention.subject_bid)
        _provider_holds_no_refund(failed)
        result = refund_retry(refund=failed, actor=actor)  # closes the row once made
        if isinstance(result, RefundApproval):
            attention.note = f"asked for again: awaiting approval {result.pk}"
            attention.save(update_fields=["note", "updated_at"])
        attention.refresh_from_db()
        return attention
    if attention.kind != AttentionKind.UNSETTLED:
        raise InvalidInput(
            f"{attention} is a decision for staff: check it with the provider, refund the "
            "order if needed, and resolve it with a note.",
            code="attention_not_retryable",
        )
    if attention.order is not None:
        _note(attention.order, actor, f"retry of {attention}")
    settled = attention_subject_settle(attention)
    attention.refresh_from_db()
    if settled:
        return _attention_close(attention, actor, "settled on a staff retry")
    return attention


def _provider_holds_no_refund(refund: Refund) -> None:
    """Refuse to ask again for a refund the provider says it made."""
    if not refund.provider_refund_id:
        return
    provider = registry.get_provider_any(refund.payment_channel)
    attempt = provider.attempts_for(attempt_bid=refund.attempt_bid).first()
    if attempt is None:
        return
    provider = attempt_provider(refund.payment_channel, attempt)
    state = provider.fetch_refund(attempt.provider_payment_id, refund.provider_refund_id)
    if state.state != REFUND_FAILED:
        raise InvalidInput(
            f"{refund.payment_channel} reports refund {refund.refund_bid} as {state.state}: "
            "it is not asked for again. Check it with the provider.",
            code="refund_not_retryable",
        )


def attention_resolve(*, attention: Attention, actor: Any, note: str) -> Attention:
    """Close what was listed for staff, with a note saying what was done."""
    if not note or not note.strip():
        raise InvalidInput("Resolving needs a note saying what was done.", code="note_required")
    return _attention_close(attention, actor, note.strip())


def _attention_close(attention: Attention, actor: Any, note: str) -> Attention:
    with transaction.atomic():
        locked = Attention.objects.select_for_update().get(pk=attention.pk)
        locked.status = AttentionStatus.RESOLVED
        locked.resolved_by = actor if getattr(actor, "pk", None) else None
        locked.resolved_at = timezone.now()
        locked.note = note
        locked.save()
        if locked.order is not None:
            _note(locked.order, actor, f"resolved: {locked}: {note}", attention=locked.pk)
    return locked
