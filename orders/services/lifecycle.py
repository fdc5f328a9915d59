"""An order's lifecycle: the allowed transitions, the locks and the history.

``order_set_status`` is the one place an order's status changes. Locks are always taken
in one order: the user's purchase lock (``_purchase_lock``), then the order
(``_lock``), then an attempt or a refund; so no two services deadlock.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import outbound
from orders.errors import IntegrationMismatch, OrderNotFound, TransitionNotAllowed
from orders.models import (
    Attention,
    AttentionKind,
    AttentionStatus,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    PurchaseLock,
)
from payments import registry
from payments.models import NATIVE_ATTEMPTS, NativeAttempt, PaymentIntegration
from payments.native import INTEGRATION_KEY
from payments.providers.base import PaymentState, ProviderBadResponse, RefundState
from payments_project.errors import ServiceError
from promos import services as promo_services

# The package keeps the one logger name it had as a module.
logger = logging.getLogger("orders.services")


S = OrderStatus
# Statuses only move forward. A payment that arrives after a timeout or a
# cancellation is still money received: the order becomes paid.
TRANSITIONS: dict[int, frozenset[int]] = {
    S.INIT: frozenset({S.UNPAID, S.PAID, S.TIMEOUT, S.CANCELLED}),
    S.UNPAID: frozenset({S.PAID, S.TIMEOUT, S.CANCELLED}),
    S.TIMEOUT: frozenset({S.PAID}),
    S.CANCELLED: frozenset({S.PAID}),
    S.PAID: frozenset({S.REFUNDED, S.REVOKED}),
    S.REFUNDED: frozenset(),
    # Revoked by the platform: its money can still be refunded, in full at last.
    S.REVOKED: frozenset({S.REFUNDED}),
}
PAYABLE = (S.INIT, S.UNPAID)
# Paid, with the money kept: what can be refunded. Only PAID is owned (an entitlement).
MONEY_KEPT = (S.PAID, S.REVOKED)
# The one way back, on a provider's word only: a refund that failed after succeeding.
REVERSALS: dict[int, frozenset[int]] = {S.REFUNDED: frozenset({S.PAID, S.REVOKED})}


def _lock(order: Order | str) -> Order:
    order_bid = order if isinstance(order, str) else order.order_bid
    try:
        return Order.objects.select_for_update().get(order_bid=order_bid)
    except Order.DoesNotExist:
        raise OrderNotFound(f"No order {order_bid!r}.", order_bid=order_bid) from None


def order_event_write(
    *,
    order: Order,
    kind: str,
    message: str,
    source: str,
    actor: Any = None,
    data: dict | None = None,
    from_status: int | None = None,
    to_status: int | None = None,
) -> OrderEvent:
    ids = {key: data[key] for key in ("attempt_bid", "refund_bid") if data and key in data}
    logger.info(
        "order %s: %s",
        order.order_bid,
        message,
        extra={
            "order_bid": order.order_bid,
            **ids,
            "channel": order.payment_channel,
            "event_kind": kind,
            "source": source,
            "to_status": to_status,
        },
    )
    return OrderEvent.objects.create(
        order=order,
        kind=kind,
        message=message[:500],
        source=source[:255],
        actor=actor if getattr(actor, "pk", None) else None,
        data=data or {},
        from_status=from_status,
        to_status=to_status,
    )


@transaction.atomic
def order_set_status(
    *,
    order: Order,
    to: int,
    source: str,
    actor: Any = None,
    message: str = "",
    data: dict | None = None,
    changes: dict[str, Any] | None = None,
    refund_reversal: bool = False,
    locked: bool = False,
) -> Order:
    """The one place an order's status changes: lock, check, save, audit.

    ``changes`` are other fields saved with the status (paid price, channel). Returns
    the locked, updated order. A transition to the current status is refused like any
    other that is not allowed. ``locked``: the caller got ``order`` from ``_lock`` in the
    transaction it is in, so it is not read and locked again.
    """
    if locked:
        assert transaction.get_connection().in_atomic_block, "a lock lives in a transaction"
        locked_order = order
    else:
        locked_order = _lock(order)
    locked = locked_order
    allowed = REVERSALS if refund_reversal else TRANSITIONS
    if to not in allowed.get(locked.status, frozenset()):
        raise TransitionNotAllowed(
            f"Order {locked.order_bid} cannot go from {locked.status_name} to "
            f"{OrderStatus(to).label}.",
            order_bid=locked.order_bid,
            status=locked.status_name,
        )
    from_status = locked.status
    locked.status = to
    for name, value in (changes or {}).items():
        setattr(locked, name, value)
    locked.save(update_fields=["status", "updated_at", *(changes or {})])
    order_event_write(
        order=locked,
        kind=OrderEventKind.STATUS,
        message=message or f"{OrderStatus(from_status).label} -> {OrderStatus(to).label}",
        source=source,
        actor=actor,
        data=data,
        from_status=from_status,
        to_status=to,
    )
    outbound.status_changed(
        order=locked, from_status=from_status, to_status=to, source=source, data=data
    )
    _discounts_follow(order=locked, from_status=from_status, to=to)
    if locked is not order:
        order.__dict__.update(locked.__dict__)
    return locked


def order_refusal_write(
    *, order: Order, kind: str, error: ServiceError, source: str, label: str, actor: Any = None
) -> OrderEvent:
    """A refused report or request in the order's history, with the error's code and
    details: written outside the refused transaction, so that the record survives it."""
    return order_event_write(
        order=order,
        kind=kind,
        message=f"{label}: {error.message}",
        source=source,
        actor=actor,
        data={"code": error.code, **{k: str(v) for k, v in error.details.items()}},
    )


def attempt_integration(attempt: Any, order: Order | None = None) -> str:
    """The merchant account an attempt was made with: as the attempt records it (the
    rows this service writes on the native channels), else its order's
    ``payment_integration_bid``: the platform's rows, whose order's account payment_start
    pins on them before it changes (``native_attempts_pin``). An attempt of a channel
    that takes no integrations (Ping++, Stripe) was made with the platform's account
    when the order's is one of this service's integrations (chosen for a later payment
    on a native channel); an account this service does not hold (the platform's Ping++
    or Stripe integrations of creators) is the attempt's, and is refused where used."""
    recorded = getattr(attempt, "integration_bid", None)
    if isinstance(recorded, str):
        return recorded
    if order is not None:
        found = order.payment_integration_bid
    else:
        found = (
            Order.objects.filter(order_bid=attempt.order_bid)
            .values_list("payment_integration_bid", flat=True)
            .first()
        ) or ""
    ours = found and PaymentIntegration.objects.filter(integration_bid=found).exists()
    return "" if ours and not isinstance(attempt, NativeAttempt) else found


def native_attempts_pin(order: Order) -> None:
    """Record the order's current account on its native attempts that record none (the
    platform's rows), before a payment through another account changes the order's: each
    keeps the account that made it. The caller holds the order's lock."""
    for model in NATIVE_ATTEMPTS.values():
        for attempt in model.objects.filter(order_bid=order.order_bid):
            if attempt.integration_bid is None:
                pinned = {INTEGRATION_KEY: order.payment_integration_bid}
                attempt.metadata = {**attempt.metadata_map, **pinned}
                attempt.save(update_fields=["metadata", "updated_at"])


def answer_about(channel: str, attempt: Any, state: PaymentState) -> PaymentState:
    """A provider's answer to a question about ``attempt`` (sync, reconciliation, close,
    the start), bound to it: one that names another attempt is refused
    (ProviderBadResponse), whatever the keys that signed it, so that no account's
    answer settles another's payment."""
    if state.attempt_bid and state.attempt_bid != attempt.attempt_bid:
        raise ProviderBadResponse(
            f"Asked about attempt {attempt.attempt_bid}, the provider answered about "
            f"{state.attempt_bid}: not applied.",
            channel=channel,
            attempt=attempt.attempt_bid,
            named=state.attempt_bid,
        )
    return replace(state, attempt_bid=attempt.attempt_bid)


def attempt_fetched(provider: Any, attempt: Any) -> PaymentState:
    """The attempt's payment as its provider sees it now, bound to the attempt."""
    state = provider.fetch_payment(attempt.provider_payment_id)
    return answer_about(provider.channel, attempt, state)


def refund_answer_about(refund: Any, state: RefundState) -> RefundState:
    """A provider's answer about ``refund``, bound to it (see ``answer_about``)."""
    if state.refund_bid and state.refund_bid != refund.refund_bid:
        raise ProviderBadResponse(
            f"Asked about refund {refund.refund_bid}, the provider answered about "
            f"{state.refund_bid}: not applied.",
            channel=refund.payment_channel,
            refund=refund.refund_bid,
            named=state.refund_bid,
        )
    return replace(state, refund_bid=refund.refund_bid)


def integration_check(*, attempt: Any, order: Order, verified_by: str | None) -> None:
    """IntegrationMismatch when a notification verified with ``verified_by``'s keys (""
    the platform's) names a payment another merchant account took, so that no account's
    keys settle another's payments or refunds. None: news from a call made with the
    attempt's own keys (sync, reconciliation), nothing to check."""
    if verified_by is None:
        return
    taken_by = attempt_integration(attempt, order)
    if verified_by != taken_by:
        raise IntegrationMismatch(
            f"A notification verified with the keys of {_account(verified_by)} names "
            f"attempt {attempt.attempt_bid}, which was made with {_account(taken_by)}: "
            "refused, nothing applied.",
            attempt=attempt.attempt_bid,
            verified_by=verified_by,
            taken_by=taken_by,
        )


def _account(integration_bid: str) -> str:
    return f"integration {integration_bid}" if integration_bid else "the platform's account"


def integration_mismatch_record(
    *, error: IntegrationMismatch, order: Order, channel: str, kind: str, raw: Any, source: str
) -> None:
    """A refused notification of another account, in the order's history and listed for
    staff: written outside the refused transaction."""
    order_refusal_write(order=order, kind=kind, error=error, source=source, label="refused")
    attention_open(
        kind=AttentionKind.INTEGRATION_MISMATCH,
        subject_kind="attempt",
        subject_bid=error.details["attempt"],
        order=order,
        channel=channel,
        reason=error.message,
        last_answer=json.dumps(dict(raw or {}), default=str)[:5000],
    )


def attempt_provider(channel: str, attempt: Any) -> Any:
    """The provider with the keys ``attempt`` was made with: its money is looked up,
    closed and refunded there, whatever the order or the creator uses now."""
    return registry.provider_of(channel, attempt_integration(attempt))


def refund_provider(refund: Any) -> Any:
    """The provider with the keys of the payment ``refund`` gives money back on."""
    attempt = (
        registry.get_provider_any(refund.payment_channel)
        .attempts_for(attempt_bid=refund.attempt_bid)
        .first()
    )
    if attempt is None:
        integration = (
            Order.objects.filter(pk=refund.order_id)
            .values_list("payment_integration_bid", flat=True)
            .first()
        )
        return registry.provider_of(refund.payment_channel, integration or "")
    return attempt_provider(refund.payment_channel, attempt)


def _discounts_follow(*, order: Order, from_status: int, to: int) -> None:
    """What the order's discounts do when it moves: used when paid (taken again after a
    cancellation, a time-out or a refund the provider reversed), given back when it dies
    unpaid or is refunded in full (where the coupon's batch says so). A coupon a late
    payment cannot take back cleanly is listed for staff: the money was received at the
    discounted price. An order without discounts costs nothing here, except when it dies
    unpaid: an old system's order may hold a code with no discount recorded."""
    if to in (S.CANCELLED, S.TIMEOUT):
        promo_services.discounts_release(order_bid=order.order_bid)
        return
    if not order.discount_price:
        return
    if to == S.PAID or (to == S.REVOKED and from_status == S.REFUNDED):
        problems = promo_services.discounts_use(order_bid=order.order_bid)
        if problems:
            attention_open(
                kind=AttentionKind.COUPON_CONFLICT,
                subject_kind="order",
                subject_bid=order.order_bid,
                order=order,
                channel=order.payment_channel,
                reason="paid with a discount no longer held: " + "; ".join(problems),
            )
    elif to == S.REFUNDED:
        promo_services.discounts_release(order_bid=order.order_bid, refunded=True)


def attention_open(
    *,
    kind: str,
    subject_kind: str,
    subject_bid: str,
    reason: str,
    order: Order | None = None,
    channel: str = "",
    last_answer: str = "",
) -> Attention:
    """List something for staff (or list it again, if it was resolved before)."""
    row, created = Attention.objects.get_or_create(
        kind=kind,
        subject_kind=subject_kind,
        subject_bid=subject_bid,
        defaults={
            "order": order,
            "channel": channel,
            "reason": reason[:500],
            "last_answer": last_answer,
            "status": AttentionStatus.OPEN,
        },
    )
    if not created:
        row.status = AttentionStatus.OPEN
        row.reason = reason[:500]
        row.last_answer = last_answer or row.last_answer
        row.resolved_at = None
        row.resolved_by = None
        row.save()
    if order is not None:
        order_event_write(
            order=order,
            kind=OrderEventKind.NOTE,
            message=f"needs attention: {reason}",
            source="system",
            data={"attention": row.pk, "kind": kind},
        )
    return row


def _expired(order: Order, now=None) -> bool:
    now = now or timezone.now()
    return order.created_at <= now - timedelta(seconds=settings.PAY_ORDER_EXPIRE_SECONDS)


def _purchase_lock(*, user_bid: str, product_bid: str) -> None:
    """Lock the user's purchases of the product until the caller's transaction ends.

    The lock row is made before the first order (in its own short transaction where
    the caller has none), so concurrent creations and payments of one user and product
    queue on one row: never two live orders, never two payments unnoticed. Locks are
    always taken in this order: purchase, then order, then attempt or refund.
    """
    found = PurchaseLock.objects.select_for_update().filter(
        user_bid=user_bid, product_bid=product_bid
    )
    if found.exists():
        return
    try:
        with transaction.atomic():
            PurchaseLock.objects.create(user_bid=user_bid, product_bid=product_bid)
    except IntegrityError:  # made meanwhile by a concurrent request: wait for its lock
        found.get()


def _purchase_lock_row(*, user_bid: str, product_bid: str) -> None:
    """Make the lock row, committed, before the transaction that locks it."""
    if PurchaseLock.objects.filter(user_bid=user_bid, product_bid=product_bid).exists():
        return
    try:
        with transaction.atomic():
            PurchaseLock.objects.create(user_bid=user_bid, product_bid=product_bid)
    except IntegrityError:
        pass


def _purchase_orders(*, user_bid: str, product_bid: str, statuses, newest_first: bool = False):
    """Under the user's purchase lock (taken here, in the caller's transaction), their
    live orders of the product in ``statuses``, oldest first (or newest)."""
    _purchase_lock(user_bid=user_bid, product_bid=product_bid)
    return list(
        Order.objects.live()
        .filter(user_bid=user_bid, product_bid=product_bid, status__in=statuses)
        .order_by("-id" if newest_first else "id")
    )
