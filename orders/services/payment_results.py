"""What providers say of payments (webhooks, sync, reconciliation), applied, and
the closing of attempts an order no longer needs.

``payment_apply`` is idempotent and never moves an order backwards: a late payment
pays a timed-out or cancelled order, a second payment is refunded or kept for staff.
Closing attempts lives here too, since a close is answered like any payment (closed,
or paid meanwhile) and goes through ``payment_apply``.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from orders.errors import AmountMismatch, AttemptNotFound, IntegrationMismatch
from orders.models import AttentionKind, Order, OrderEventKind, Refund
from orders.services.attention import attention_open
from orders.services.lifecycle import (
    PAYABLE,
    TRANSITIONS,
    S,
    _lock,
    _purchase_lock,
    answer_about,
    attempt_integration,
    attempt_provider,
    integration_check,
    integration_mismatch_record,
    order_event_write,
    order_refusal_write,
    order_set_status,
)
from orders.services.refunds import _duplicate_payment_refund, _submit_after_commit
from payments import attempts, registry
from payments.models import AttemptStatus, held_by_another_domain
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    PaymentState,
    ProviderError,
)
from payments_project.money import to_major
from promos import services as promo_services

# The package keeps the one logger name it had as a module.
logger = logging.getLogger("orders.services")


def payment_apply(
    *, channel: str, state: PaymentState, source: str, integration_bid: str | None = None
) -> Order:
    """Apply what a provider says of a payment (webhook, sync, reconciliation).

    Idempotent; never moves an order backwards. An amount or currency other than the
    attempt's is refused (AmountMismatch) and recorded on the order. ``integration_bid``:
    the merchant account whose keys verified a notification ("" the platform's); one
    that did not take the attempt is refused (IntegrationMismatch), recorded and listed
    for staff, so that no account's keys settle another's payments. None: the news came
    from a call made with the attempt's own keys (sync, reconciliation).
    """
    provider = registry.get_provider_any(channel)
    with transaction.atomic():
        attempt = _find_attempt(
            provider, attempt_bid=state.attempt_bid, provider_payment_id=state.provider_payment_id
        )
        if state.state == PAYMENT_SUCCEEDED:
            # Whether the user already owns the product is decided under their lock.
            owner = (
                Order.objects.filter(order_bid=attempt.order_bid)
                .values_list("user_bid", "product_bid")
                .first()
            )
            if owner is not None:
                _purchase_lock(user_bid=owner[0], product_bid=owner[1])
        # Locks are always taken purchase, order, then attempt or refund: no deadlocks.
        order = _lock(attempt.order_bid)
        attempt = attempts.attempt_locked(provider, pk=attempt.pk)
        try:
            integration_check(attempt=attempt, order=order, verified_by=integration_bid)
            _check_money(attempt=attempt, amount=state.amount, currency=state.currency, what=source)
        except (AmountMismatch, IntegrationMismatch) as exc:
            mismatch = exc
        else:
            mismatch = None
        if mismatch is None:
            change = attempts.attempt_reported(provider, attempt, state)
            _apply_payment_to(
                channel=channel,
                order=order,
                attempt=attempt,
                state=state,
                source=source,
                change=change,
            )
            return order
    if isinstance(mismatch, IntegrationMismatch):
        integration_mismatch_record(
            error=mismatch,
            order=order,
            channel=channel,
            kind=OrderEventKind.PAYMENT,
            raw=state.raw,
            source=source,
        )
    else:
        order_refusal_write(
            order=order, kind=OrderEventKind.PAYMENT, error=mismatch, source=source, label="refused"
        )
    raise mismatch


def _find_attempt(provider, *, attempt_bid: str, provider_payment_id: str):
    """The attempt a report names: by our attempt id when it gives one (a report about
    one attempt never settles another through a payment id), else by the provider's."""
    attempt = None
    if attempt_bid:
        attempt = provider.attempts_for(attempt_bid=attempt_bid).first()
    if attempt is None and provider_payment_id:
        attempt = provider.attempts_for(provider_payment_id=provider_payment_id).first()
    if attempt is None:
        raise AttemptNotFound(
            f"No {provider.channel} attempt {attempt_bid or provider_payment_id!r}.",
            attempt=attempt_bid or provider_payment_id,
            another_domain=held_by_another_domain(
                provider.attempt_model, attempt_bid=attempt_bid, payment_id=provider_payment_id
            ),
        )
    return attempt


def _check_money(*, attempt, amount: int, currency: str, what: str) -> None:
    if amount != attempt.amount or currency.lower() != attempt.currency_code:
        raise AmountMismatch(
            f"{what} reports {amount} {currency.upper()}, but attempt {attempt.attempt_bid} "
            f"asked for {attempt.amount} {attempt.currency_code.upper()}.",
            expected_amount=attempt.amount,
            expected_currency=attempt.currency_code,
            amount=amount,
            currency=currency,
        )


def _apply_payment_to(
    *, channel: str, order: Order, attempt, state: PaymentState, source: str, change
) -> None:
    """The order's side of what the provider said of one attempt (already recorded on
    the attempt row, ``change``)."""
    if state.state == PAYMENT_SUCCEEDED:
        if not change.moved:  # already paid or refunded: a repeat
            return
        paid = to_major(state.amount, state.currency)
        if order.status in TRANSITIONS and S.PAID in TRANSITIONS[order.status]:
            _order_paid(
                channel=channel, order=order, attempt=attempt, paid=paid, state=state, source=source
            )
        else:
            _duplicate_payment_refund(
                channel=channel, order=order, attempt=attempt, amount=paid, source=source
            )
        return
    if change.moved:
        order_event_write(
            order=order,
            kind=OrderEventKind.PAYMENT,
            message=f"attempt {attempt.attempt_bid} {change.after_label}"
            + (f": {state.failure_code} {state.failure_message}" if state.failure_code else ""),
            source=source,
        )


def _order_paid(*, channel: str, order: Order, attempt, paid: Decimal, state, source: str) -> None:
    """A payment that pays ``order`` (locked, with the user's purchase lock held).

    Money received is never refused: a late payment on a timed-out or cancelled order
    pays it. Other unpaid orders of the same product are cancelled. A payment for a
    product the user already owns through another paid order is a duplicate purchase:
    refunded at once through its channel, or kept for staff, by
    ``PAY_DUPLICATE_PAYMENT_POLICY``.
    """
    late = order.status in (S.TIMEOUT, S.CANCELLED)
    # The user's other orders of the product, read once: the purchase lock is held.
    siblings = list(Order.objects.siblings_of(order, S.PAID, *PAYABLE).order_by("id"))
    owned = next((other for other in siblings if other.status == S.PAID), None)
    payable = [other.pk for other in siblings if other.status in PAYABLE]
    if payable:
        # The unpaid ones are cancelled below: their rows locked (and read again: one may
        # have been cancelled meanwhile), then the batches of every code involved, before
        # this order's code is taken and theirs given back, as every service locks them.
        locked_payable = Order.objects.select_for_update().filter(pk__in=payable).order_by("id")
        payable = [other for other in locked_payable if other.status in PAYABLE]
        promo_services.batches_lock(
            order_bids=[order.order_bid, *(other.order_bid for other in payable)]
        )
    policy = settings.PAY_DUPLICATE_PAYMENT_POLICY
    order_set_status(
        order=order,
        to=S.PAID,
        source=source,
        message=(
            f"paid {paid} {state.currency.upper()} through {attempt.attempt_bid}"
            + (f" (late: the order was {order.status_name})" if late else "")
            + (
                f"; the user already owns the product through order {owned.order_bid}: "
                + ("refunded automatically" if policy == "refund" else "kept for staff")
                if owned
                else ""
            )
        ),
        data={
            "attempt_bid": attempt.attempt_bid,
            "late": late,
            "duplicate_purchase": owned.order_bid if owned else False,
        },
        changes={
            "paid_price": paid,
            "payment_channel": channel,
            # The account that took the money: refunds go back through it.
            "payment_integration_bid": attempt_integration(attempt, order),
        },
        locked=True,
    )
    for other in payable:
        order_set_status(
            order=other,
            to=S.CANCELLED,
            source=source,
            message=f"cancelled: order {order.order_bid} paid for the same product",
            locked=True,
        )
        _close_attempts_after_commit(other.order_bid, source)
    if owned is None:
        return
    reason = f"duplicate purchase: the product is already owned through order {owned.order_bid}"
    if policy == "refund":
        refund = Refund.objects.create(
            order=order,
            payment_channel=channel,
            attempt_bid=attempt.attempt_bid,
            amount=paid,
            currency=order.currency,
            reason=reason[:255],
        )
        order_event_write(
            order=order,
            kind=OrderEventKind.REFUND,
            message=f"refund {refund.refund_bid} of {paid} {order.currency.upper()} "
            f"requested automatically: {reason}",
            source=source,
            data={"refund_bid": refund.refund_bid, "duplicate_purchase": owned.order_bid},
        )
        _submit_after_commit(refund, attempt.provider_payment_id)
    else:
        attention_open(
            kind=AttentionKind.DUPLICATE_PURCHASE,
            subject_kind="order",
            subject_bid=order.order_bid,
            order=order,
            channel=channel,
            reason=reason + " (PAY_DUPLICATE_PAYMENT_POLICY=flag: refund it or keep it)",
        )


def _close_attempts_after_commit(order_bid: str, source: str) -> None:
    def close() -> None:
        try:
            order_attempts_close(order_bid=order_bid, source=source)
        except Exception:  # the order is closed; reconciliation closes what is left
            logger.exception("closing the attempts of order %s failed", order_bid)

    transaction.on_commit(close)


def _open_attempts(order_bid: str) -> list[tuple[Any, Any]]:
    """(provider, attempt) for every attempt of an order that may still be paid: pending,
    or failed (a declined card can be tried again on the same PaymentIntent)."""
    found = []
    for channel in registry.enabled_channels():  # a disabled channel has no keys to call
        if channel not in settings.PAYMENT_PROVIDERS:
            continue
        model = registry.get_provider_any(channel).attempt_model
        for attempt in model.objects.filter(
            order_bid=order_bid, status__in=(AttemptStatus.PENDING, AttemptStatus.FAILED)
        ):
            found.append((channel, attempt))
    return found


def order_attempts_close(*, order_bid: str, source: str = "system") -> int:
    """Close at the provider every pending attempt of an order that is no longer
    payable; how many could not be closed now (reconciliation retries them).

    Each provider is called outside any lock; its answer is applied like any other:
    closed, or paid meanwhile (a late payment, recorded as such).
    """
    left = 0
    for channel, attempt in _open_attempts(order_bid):
        try:
            provider = attempt_provider(channel, attempt)
            _attempt_close(provider, attempt, source=source)
        except ProviderError as exc:
            left += 1
            order = Order.objects.filter(order_bid=order_bid).first()
            if order is not None:
                order_event_write(
                    order=order,
                    kind=OrderEventKind.ATTEMPT,
                    message=f"attempt {attempt.attempt_bid} could not be closed at "
                    f"{channel} yet ({exc.code}); reconciliation will retry",
                    source=source,
                    data={"attempt_bid": attempt.attempt_bid, "error": exc.message},
                )
    return left


def _attempt_close(provider, attempt, *, source: str) -> None:
    state = provider.close_payment(attempt)
    if state.state == PAYMENT_PENDING:
        return  # no close call for this method: it expires with the order
    state = answer_about(provider.channel, attempt, state)
    if not state.provider_payment_id and state.state == PAYMENT_CLOSED:
        _attempt_close_orphan(provider, attempt)
        return
    payment_apply(channel=provider.channel, state=state, source=f"{provider.channel}:close")


@transaction.atomic
def _attempt_close_orphan(provider, attempt) -> None:
    order = _lock(attempt.order_bid)
    attempt = attempts.attempt_locked(provider, pk=attempt.pk)
    if attempts.attempt_closed_unstarted(provider, attempt) is None:
        return
    order_event_write(
        order=order,
        kind=OrderEventKind.ATTEMPT,
        message=f"attempt {attempt.attempt_bid} closed: the provider's answer was never "
        "recorded, so it could not be paid",
        source=f"{provider.channel}:reconcile",
    )
