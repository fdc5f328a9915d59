"""What providers say of refunds (an answer, a webhook, reconciliation), applied.

``refund_apply`` is idempotent and tolerates events in any order: a succeeded refund
stays succeeded, one that fails after succeeding is reversed on the provider's word and
listed for staff, and a refund made at the provider (its dashboard) is recorded on its
order.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from orders import dashboard, outbound
from orders.errors import (
    AmountMismatch,
    AttemptNotFound,
    EventConflict,
    IntegrationMismatch,
    NotApplicableYet,
)
from orders.models import AttentionKind, Order, OrderEventKind, Refund, RefundStatus
from orders.services.attention import attention_open
from orders.services.lifecycle import (
    MONEY_KEPT,
    S,
    _lock,
    _purchase_lock,
    integration_check,
    integration_mismatch_record,
    order_event_write,
    order_set_status,
)
from payments import attempts, registry
from payments.models import AttemptStatus, held_by_another_domain
from payments.providers.base import REFUND_FAILED, REFUND_SUCCEEDED, RefundState
from payments_project.money import to_major, to_minor


def refund_apply(
    *,
    channel: str,
    state: RefundState,
    source: str,
    refused_now: bool = False,
    integration_bid: str | None = None,
) -> Refund | None:
    """Apply what a provider says of a refund (answer, webhook, reconciliation).

    Idempotent and order-tolerant: a succeeded refund stays succeeded, an order is
    refunded once refunds add up to what was paid, and a refund reported before the
    payment it refunds is kept for later (NotApplicableYet). Returns None for a failed
    refund made at the provider, which changes nothing here. ``integration_bid``: whose
    keys verified a notification (see ``payment_apply``); news of a payment another
    merchant account took is refused (IntegrationMismatch), recorded and listed.
    """
    try:
        return _refund_apply(
            channel=channel,
            state=state,
            source=source,
            refused_now=refused_now,
            integration_bid=integration_bid,
        )
    except IntegrationMismatch as mismatch:
        order = Order.objects.filter(order_bid=mismatch.details.get("order_bid", "")).first()
        if order is not None:
            integration_mismatch_record(
                error=mismatch,
                order=order,
                channel=channel,
                kind=OrderEventKind.REFUND,
                raw=state.raw,
                source=source,
            )
        raise


def _refund_apply(
    *, channel: str, state: RefundState, source: str, refused_now: bool, integration_bid
) -> Refund | None:
    provider = registry.get_provider_any(channel)
    with transaction.atomic():
        refund = _find_refund(channel=channel, state=state)
        if refund is None:
            return _refund_from_provider(
                provider=provider, state=state, source=source, integration_bid=integration_bid
            )
        # Whether the user still owns the product (the platform's entitlement) is decided
        # under their purchase lock, taken first as always.
        _purchase_lock(user_bid=refund.order.user_bid, product_bid=refund.order.product_bid)
        order = _lock(refund.order.order_bid)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if integration_bid is not None:
            paid = provider.attempts_for(attempt_bid=refund.attempt_bid).first()
            if paid is not None:
                _integration_check(paid, order, integration_bid)
        expected = to_minor(refund.amount, refund.currency)
        currency = (state.currency or refund.currency).lower()
        if state.amount != expected or currency != refund.currency:
            raise AmountMismatch(
                f"{source} reports a refund of {state.amount} {currency.upper()}, but "
                f"refund {refund.refund_bid} is {expected} {refund.currency.upper()}.",
                expected_amount=expected,
                amount=state.amount,
            )
        if state.provider_refund_id and not refund.provider_refund_id:
            refund.provider_refund_id = state.provider_refund_id
        if state.raw:
            refund.raw = dict(state.raw)
        refund.outcome = "no change"
        if state.state == REFUND_SUCCEEDED and refund.status == RefundStatus.FAILED:
            # Failed here (its reversal recorded), then reported succeeded again: the
            # provider's latest word on an old state; listed for staff, not applied.
            refund.outcome = "refund reported succeeded after it failed: left for staff"
            attention_open(
                kind=AttentionKind.REFUND_CONFLICT,
                subject_kind="refund",
                subject_bid=refund.refund_bid,
                order=order,
                channel=channel,
                reason=f"refund {refund.refund_bid} was reported succeeded after it failed; "
                "the customer may have been refunded: check it at the provider before any "
                "new refund",
                last_answer=json.dumps(dict(state.raw), default=str)[:5000],
            )
        elif state.state == REFUND_SUCCEEDED and refund.status != RefundStatus.SUCCEEDED:
            _refund_succeeded(order=order, refund=refund, provider=provider, source=source)
            refund.outcome = "refund succeeded"
        elif state.state == REFUND_FAILED and refund.status == RefundStatus.PENDING:
            refund.status = RefundStatus.FAILED
            refund.failure_code = state.failure_code[:255]
            refund.failure_message = state.failure_message
            refund.settled_at = timezone.now()
            message = (
                f"refund {refund.refund_bid} of {refund.amount} {refund.currency.upper()} "
                f"failed: {state.failure_code} {state.failure_message}".rstrip()
            )
            order_event_write(
                order=order, kind=OrderEventKind.REFUND, message=message, source=source
            )
            outbound.refund_settled(order=order, refund=refund, type=outbound.REFUND_FAILED)
            attention_open(
                kind=AttentionKind.REFUND_FAILED,
                subject_kind="refund",
                subject_bid=refund.refund_bid,
                order=order,
                channel=channel,
                reason=message
                + (
                    " (an automatic refund: the customer is still charged twice)"
                    if refund.requested_by_id is None
                    else ""
                ),
                last_answer=json.dumps(dict(state.raw), default=str)[:5000],
            )
            refund.outcome = "refund failed; listed for staff"
        elif (
            state.state == REFUND_FAILED
            and refund.status == RefundStatus.SUCCEEDED
            and not refused_now  # our own call refused: says nothing of the refund made
        ):
            _refund_reversed(
                order=order, refund=refund, provider=provider, state=state, source=source
            )
        refund.save()
        return refund


def _find_refund(*, channel: str, state: RefundState) -> Refund | None:
    refunds = Refund.objects.select_related("order")
    if state.refund_bid:
        found = refunds.filter(refund_bid=state.refund_bid).first()
        if found:
            return found
    if state.provider_refund_id:
        return refunds.filter(
            payment_channel=channel, provider_refund_id=state.provider_refund_id
        ).first()
    return None


def _refund_succeeded(*, order: Order, refund: Refund, provider, source: str) -> None:
    refund.status = RefundStatus.SUCCEEDED
    refund.settled_at = timezone.now()
    attempt = provider.attempts_for(attempt_bid=refund.attempt_bid).first()
    if refund.duplicate_payment:
        # Not part of the order's totals: the order was paid through another attempt.
        attempts.attempt_refunded(provider, attempt)
        _refund_note(refund, f"of a duplicate payment ({refund.amount}) succeeded")
        outbound.refund_settled(order=order, refund=refund, type=outbound.REFUND_SUCCEEDED)
        return
    if order.status == S.REFUNDED:
        raise EventConflict(
            f"Refund {refund.refund_bid} succeeded, but order {order.order_bid} is already "
            "fully refunded.",
            order_bid=order.order_bid,
        )
    if order.status not in MONEY_KEPT:
        raise NotApplicableYet(
            f"Refund {refund.refund_bid} succeeded, but order {order.order_bid} is "
            f"{order.status_name}: waiting for its payment to be recorded.",
            order_bid=order.order_bid,
        )
    refunded = order.refunded_price + refund.amount
    if refunded > order.paid_price:
        raise AmountMismatch(
            f"Refund {refund.refund_bid} would bring order {order.order_bid} to {refunded} "
            f"refunded of {order.paid_price} paid.",
            refunded=str(refunded),
        )
    order.refunded_price = refunded
    order.save(update_fields=["refunded_price", "updated_at"])
    order_event_write(
        order=order,
        kind=OrderEventKind.REFUND,
        message=f"refund {refund.refund_bid} of {refund.amount} {refund.currency.upper()} "
        "succeeded",
        source=source,
        data={"refund_bid": refund.refund_bid, "refunded_total": str(refunded)},
    )
    outbound.refund_settled(order=order, refund=refund, type=outbound.REFUND_SUCCEEDED)
    if refunded == order.paid_price:
        attempts.attempt_refunded(provider, attempt)
        order_set_status(
            order=order, to=S.REFUNDED, source=source, message="fully refunded", locked=True
        )


def _refund_reversed(*, order: Order, refund: Refund, provider, state: RefundState, source: str):
    """The provider says a refund that succeeded has failed after all (Stripe's
    refund.failed, a Ping++ refund reported failed): the money is back with us, not
    with the customer. The refund is failed, the order's refunded amount and status
    are restored (refunded -> paid, on the provider's word only), and staff are told."""
    refund.status = RefundStatus.FAILED
    dashboard.day_forget(refund.settled_at)  # no longer refunded on the day it succeeded
    refund.failure_code = (state.failure_code or "failed_after_success")[:255]
    refund.failure_message = state.failure_message
    refund.settled_at = timezone.now()
    attempt = provider.attempts_for(attempt_bid=refund.attempt_bid).first()
    attempts.attempt_refund_reversed(provider, attempt)
    restored = ""
    if not refund.duplicate_payment:
        order.refunded_price = max(order.refunded_price - refund.amount, Decimal("0.00"))
        order.save(update_fields=["refunded_price", "updated_at"])
        restored = f"; refunded total back to {order.refunded_price}"
        if order.status == S.REFUNDED:
            # An order revoked before its refund goes back to revoked: no entitlement.
            back = S.REVOKED if order.events.filter(to_status=S.REVOKED).exists() else S.PAID
            order_set_status(
                order=order,
                to=back,
                source=source,
                message=f"refund {refund.refund_bid} failed after it succeeded: "
                f"{S(back).label} again",
                data={"refund_bid": refund.refund_bid},
                refund_reversal=True,
                locked=True,
            )
            restored += f", status back to {S(back).label}"
    # Written once the order is restored, so its figures are the ones now true.
    outbound.refund_settled(order=order, refund=refund, type=outbound.REFUND_REVERSED)
    reason = (
        f"refund {refund.refund_bid} of {refund.amount} {refund.currency.upper()} failed after "
        f"it succeeded ({state.failure_code or 'no code'} {state.failure_message}".rstrip()
        + f"): the customer has not been refunded{restored}"
    )
    order_event_write(
        order=order,
        kind=OrderEventKind.REFUND,
        message=reason,
        source=source,
        data={"refund_bid": refund.refund_bid, "reversed": True},
    )
    attention_open(
        kind=AttentionKind.REFUND_REVERSED,
        subject_kind="refund",
        subject_bid=refund.refund_bid,
        order=order,
        channel=refund.payment_channel,
        reason=reason,
        last_answer=json.dumps(dict(state.raw), default=str)[:5000],
    )
    refund.outcome = f"refund succeeded -> failed{restored}; listed for staff"


def _integration_check(attempt, order: Order, integration_bid: str) -> None:
    try:
        integration_check(attempt=attempt, order=order, verified_by=integration_bid)
    except IntegrationMismatch as mismatch:
        mismatch.details["order_bid"] = order.order_bid
        raise


def _refund_from_provider(
    *, provider, state: RefundState, source: str, integration_bid: str | None = None
) -> Refund | None:
    """A refund made at the provider (its dashboard): record it on its order."""
    attempt = provider.attempts_for(provider_payment_id=state.provider_payment_id).first()
    if attempt is None:
        raise AttemptNotFound(
            f"No {provider.channel} payment {state.provider_payment_id!r} for refund "
            f"{state.provider_refund_id!r}.",
            attempt=state.provider_payment_id,
            another_domain=held_by_another_domain(
                provider.attempt_model, payment_id=state.provider_payment_id
            ),
        )
    order = _lock(attempt.order_bid)
    if integration_bid is not None:
        _integration_check(attempt, order, integration_bid)
    if state.state == REFUND_FAILED:
        order_event_write(
            order=order,
            kind=OrderEventKind.REFUND,
            message=f"refund {state.provider_refund_id} made at the provider failed: "
            f"{state.failure_code} {state.failure_message}",
            source=source,
        )
        return None
    currency = (state.currency or attempt.currency_code).lower()
    if currency != attempt.currency_code:
        raise AmountMismatch(
            f"Refund {state.provider_refund_id} is in {currency.upper()}, its payment in "
            f"{attempt.currency_code.upper()}.",
            amount=state.amount,
        )
    paying = _paying_attempt(provider, order) if order.status in (*MONEY_KEPT, S.REFUNDED) else None
    duplicate = paying is not None and paying.attempt_bid != attempt.attempt_bid
    if not duplicate and order.status == S.REFUNDED:
        raise EventConflict(
            f"Refund {state.provider_refund_id} is for order {order.order_bid}, which is "
            "already fully refunded.",
            order_bid=order.order_bid,
        )
    if not duplicate and order.status not in MONEY_KEPT:
        raise NotApplicableYet(
            f"Refund {state.provider_refund_id} is for order {order.order_bid}, which is "
            f"{order.status_name}.",
            order_bid=order.order_bid,
        )
    refund = Refund.objects.create(
        order=order,
        payment_channel=provider.channel,
        attempt_bid=attempt.attempt_bid,
        amount=to_major(state.amount, currency),
        currency=currency,
        reason="made at the provider",
        provider_refund_id=state.provider_refund_id or None,
        raw=dict(state.raw),
        duplicate_payment=duplicate,
        submitted_at=timezone.now(),
    )
    order_event_write(
        order=order,
        kind=OrderEventKind.REFUND,
        message=f"refund {state.provider_refund_id} made at the provider recorded as "
        f"{refund.refund_bid}",
        source=source,
    )
    if state.state == REFUND_SUCCEEDED:
        _refund_succeeded(order=order, refund=refund, provider=provider, source=source)
        refund.save()
    return refund


def _paying_attempt(provider, order: Order):
    """The attempt whose payment paid the order (not a duplicate payment)."""
    paid = order.events.filter(to_status=S.PAID).order_by("-id").first()
    attempt_bid = (paid.data or {}).get("attempt_bid") if paid else None
    if attempt_bid:
        attempt = provider.attempts_for(attempt_bid=attempt_bid).first()
        if attempt is not None:
            return attempt
    # Orders paid by the legacy system have no history: their latest paid attempt.
    duplicates = order.refunds.filter(duplicate_payment=True).values_list("attempt_bid")
    return (
        provider.attempt_model.objects.filter(
            order_bid=order.order_bid,
            status__in=(AttemptStatus.PAID, AttemptStatus.REFUNDED),
        )
        .exclude(**{f"{provider.attempt_model.attempt_bid_field}__in": duplicates})
        .order_by("-id")
        .first()
    )


def _refund_note(refund: Refund, message: str) -> None:
    order_event_write(
        order=refund.order,
        kind=OrderEventKind.REFUND,
        message=f"refund {refund.refund_bid} {message}",
        source=refund.payment_channel,
    )
