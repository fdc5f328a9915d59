"""The functions that change orders, payments and refunds.

Each takes keyword-only arguments and runs in short transactions. A provider is never
called while a row lock is held: the pending row is written and committed first, the
provider is called, and its answer is recorded in a second transaction. Webhooks,
sync and reconciliation all end in ``payment_apply`` / ``refund_apply``, which are
idempotent and tolerate events in any order.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from orders.errors import (
    AlreadyPurchased,
    AmountMismatch,
    ApprovalAlreadyDecided,
    AttemptNotFound,
    EventConflict,
    NotApplicableYet,
    OrderExpired,
    OrderNotFound,
    OrderNotPayable,
    OrderNotRefundable,
    ProductNotFound,
    RefundExceedsRefundable,
    TransitionNotAllowed,
)
from orders.models import (
    PRICE_DECIMAL_PLACES,
    ApprovalStatus,
    Attention,
    AttentionKind,
    AttentionStatus,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    Product,
    PurchaseLock,
    Refund,
    RefundApproval,
    RefundStatus,
    new_bid,
)
from payments import registry
from payments.models import AttemptStatus
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    CurrencyNotSupported,
    PaymentRequest,
    PaymentState,
    ProviderError,
    ProviderRequestRefused,
    RefundRequest,
    RefundState,
)
from payments_project.errors import InvalidInput
from payments_project.money import UnsupportedCurrency, exponent, to_major, to_minor

logger = logging.getLogger(__name__)

S = OrderStatus
# Statuses only move forward. A payment that arrives after a timeout or a
# cancellation is still money received: the order becomes paid.
TRANSITIONS: dict[int, frozenset[int]] = {
    S.INIT: frozenset({S.UNPAID, S.PAID, S.TIMEOUT, S.CANCELLED}),
    S.UNPAID: frozenset({S.PAID, S.TIMEOUT, S.CANCELLED}),
    S.TIMEOUT: frozenset({S.PAID}),
    S.CANCELLED: frozenset({S.PAID}),
    S.PAID: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}
PAYABLE = (S.INIT, S.UNPAID)
# The one way back, on a provider's word only: a refund that failed after succeeding.
REVERSALS: dict[int, frozenset[int]] = {S.REFUNDED: frozenset({S.PAID})}


# ---- status and history ----


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
) -> Order:
    """The one place an order's status changes: lock, check, save, audit.

    ``changes`` are other fields saved with the status (paid price, channel). Returns
    the locked, updated order. A transition to the current status is refused like any
    other that is not allowed.
    """
    locked = _lock(order)
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
    order.__dict__.update(locked.__dict__)
    return locked


# ---- orders ----


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


def order_create(
    *, user_bid: str, product_bid: str, channel: str | None = None, actor: Any = None
) -> tuple[Order, bool]:
    """An order of ``product_bid`` for ``user_bid``; (order, created).

    The price comes from the product. An unexpired unpaid order of the same user and
    product is reused, its price refreshed; a product already paid for is refused; a
    free product is paid at once. Under the user's purchase lock, so concurrent calls
    give one live order.
    """
    product = Product.objects.filter(product_bid=product_bid, active=True).first()
    if product is None:
        raise ProductNotFound(f"No product {product_bid!r} on sale.", product=product_bid)
    if exponent(product.currency) > PRICE_DECIMAL_PLACES:
        raise UnsupportedCurrency(
            f"{product.currency.upper()} prices cannot be kept exactly.",
            currency=product.currency,
        )
    if channel:
        registry.get_provider(channel)  # refuses a channel that is not enabled
    source = "api"
    _purchase_lock_row(user_bid=user_bid, product_bid=product_bid)
    with transaction.atomic():
        _purchase_lock(user_bid=user_bid, product_bid=product_bid)
        mine = Order.objects.live().filter(user_bid=user_bid, product_bid=product_bid)
        if mine.filter(status=S.PAID).exists():
            raise AlreadyPurchased(
                f"The product {product.name!r} is already paid for.", product=product_bid
            )
        for order in mine.filter(status__in=PAYABLE).order_by("-id"):
            repriced = (order.payable_price, order.currency) != (product.price, product.currency)
            if _expired(order) or (repriced and order.status == S.UNPAID):
                # An order with payment attempts keeps its price; it is timed out (its
                # attempts closed at the provider) and a new order carries the new price.
                order_timeout(order=order, source="system")
                continue
            return _order_refresh(order=order, product=product, channel=channel), False

        order = Order.objects.create(
            order_bid=new_bid(),
            product_bid=product.product_bid,
            user_bid=user_bid,
            payable_price=product.price,
            paid_price=Decimal("0.00"),
            currency=product.currency,
            payment_channel=channel or registry.default_channel(),
            status=S.INIT,
        )
        order_event_write(
            order=order,
            kind=OrderEventKind.NOTE,
            message=f"created: {product.name}, {product.price} {product.currency.upper()}",
            source=source,
            actor=actor,
            to_status=S.INIT,
        )
        if product.price == 0:
            order_set_status(
                order=order,
                to=S.PAID,
                source="system",
                actor=actor,
                message="free product: paid without a provider",
            )
    return order, True


@transaction.atomic
def _order_refresh(*, order: Order, product: Product, channel: str | None) -> Order:
    locked = _lock(order)
    changes = {}
    if (locked.payable_price, locked.currency) != (product.price, product.currency):
        changes.update(payable_price=product.price, currency=product.currency)
    if channel and channel != locked.payment_channel:
        changes["payment_channel"] = channel
    if changes:
        for name, value in changes.items():
            setattr(locked, name, value)
        locked.save(update_fields=[*changes, "updated_at"])
        order_event_write(
            order=locked,
            kind=OrderEventKind.NOTE,
            message="reused; " + ", ".join(f"{k} now {v}" for k, v in changes.items()),
            source="api",
            data={k: str(v) for k, v in changes.items()},
        )
    return locked


def order_timeout(*, order: Order, source: str = "system") -> bool:
    """Time out an unpaid order; False if it was no longer payable when locked. Its
    open attempts are closed at their providers once the time-out is committed."""
    try:
        order_set_status(order=order, to=S.TIMEOUT, source=source, message="timed out unpaid")
    except TransitionNotAllowed:
        return False
    _close_attempts_after_commit(order.order_bid, source)
    return True


def order_cancel(*, order: Order, actor: Any = None, source: str = "api") -> Order:
    """Cancel an unpaid order, then close its open attempts at their providers, so that
    the customer cannot pay a dead order."""
    if order.status not in PAYABLE:
        raise OrderNotPayable(
            f"Order {order.order_bid} is {order.status_name}: only an unpaid order can be "
            "cancelled.",
            order_bid=order.order_bid,
        )
    cancelled = order_set_status(order=order, to=S.CANCELLED, source=source, actor=actor)
    _close_attempts_after_commit(order.order_bid, source)
    return cancelled


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
        provider = registry.get_provider_any(channel)
        for attempt in provider.attempt_model.objects.filter(
            order_bid=order_bid, status__in=(AttemptStatus.PENDING, AttemptStatus.FAILED)
        ):
            found.append((provider, attempt))
    return found


def order_attempts_close(*, order_bid: str, source: str = "system") -> int:
    """Close at the provider every pending attempt of an order that is no longer
    payable; how many could not be closed now (reconciliation retries them).

    Each provider is called outside any lock; its answer is applied like any other:
    closed, or paid meanwhile (a late payment, recorded as such).
    """
    left = 0
    for provider, attempt in _open_attempts(order_bid):
        try:
            _attempt_close(provider, attempt, source=source)
        except ProviderError as exc:
            left += 1
            order = Order.objects.filter(order_bid=order_bid).first()
            if order is not None:
                order_event_write(
                    order=order,
                    kind=OrderEventKind.ATTEMPT,
                    message=f"attempt {attempt.attempt_bid} could not be closed at "
                    f"{provider.channel} yet ({exc.code}); reconciliation will retry",
                    source=source,
                    data={"attempt_bid": attempt.attempt_bid, "error": exc.message},
                )
    return left


def _attempt_close(provider, attempt, *, source: str) -> None:
    state = provider.close_payment(attempt)
    if state.state == PAYMENT_PENDING:
        return  # no close call for this method: it expires with the order
    if not state.attempt_bid:
        state = replace(state, attempt_bid=attempt.attempt_bid)
    if not state.provider_payment_id and state.state == PAYMENT_CLOSED:
        _attempt_close_orphan(provider, attempt)
        return
    payment_apply(channel=provider.channel, state=state, source=f"{provider.channel}:close")


def orders_expire(*, now=None, limit: int = 1000) -> int:
    """Time out unpaid orders older than PAY_ORDER_EXPIRE_SECONDS; how many were."""
    return orders_expire_run(now=now, limit=limit).expired


@dataclass
class ExpireReport:
    checked: int = 0
    expired: int = 0  # a dry run: would be
    skipped: int = 0  # paid, cancelled or taken by another run meanwhile
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    rows: list[Checked] = field(default_factory=list)


def orders_expire_run(
    *, now=None, limit: int = 1000, dry_run: bool = False, on_row=None
) -> ExpireReport:
    """Time out unpaid orders older than PAY_ORDER_EXPIRE_SECONDS, each in its own short
    transaction that claims the order with SKIP LOCKED: runs on several machines time
    out disjoint orders, and an order being paid right now is left to its payment.
    ``dry_run`` lists what would be timed out; ``on_row(checked, done, total)``."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PAY_ORDER_EXPIRE_SECONDS)
    report = ExpireReport(dry_run=dry_run)
    stale_orders = Order.objects.filter(status__in=PAYABLE, created_at__lte=cutoff)
    stale = list(stale_orders.order_by("id")[:limit])
    for done, order in enumerate(stale, start=1):
        report.checked += 1
        what = f"order {order.order_bid}"
        try:
            if dry_run:
                timed_out = True
            else:
                with transaction.atomic():
                    claimed = (
                        stale_orders.select_for_update(skip_locked=True).filter(pk=order.pk).first()
                    )
                    timed_out = claimed is not None and order_timeout(order=claimed)
        except Exception as exc:  # one bad row must not stop the run
            report.errors.append(f"{what}: {getattr(exc, 'code', type(exc).__name__)}: {exc}")
            checked = Checked("order", order.payment_channel, what, "error", report.errors[-1])
        else:
            if timed_out:
                report.expired += 1
                detail = ""
            else:
                report.skipped += 1
                detail = "no longer unpaid, or taken by another run"
            outcome = "settled" if timed_out else "unchanged"
            checked = Checked("order", order.payment_channel, what, outcome, detail)
        report.rows.append(checked)
        if on_row is not None:
            on_row(checked, done, len(stale))
    return report


# ---- payments ----


@dataclass(frozen=True)
class PaymentStarted:
    order: Order
    attempt: Any
    channel: str
    method: str
    client_data: dict


def payment_start(
    *,
    order: Order,
    channel: str | None = None,
    method: str | None = None,
    client_ip: str = "127.0.0.1",
    success_url: str = "",
    cancel_url: str = "",
    open_id: str = "",
    actor: Any = None,
) -> PaymentStarted:
    """Start paying ``order``: an attempt row first, then the provider, then its answer."""
    channel, method = registry.resolve(channel, method, fallback=order.payment_channel)
    provider = registry.get_provider(channel)
    if order.status in PAYABLE and _expired(order):
        order_timeout(order=order)
        raise OrderExpired(f"Order {order.order_bid} has expired.", order_bid=order.order_bid)

    with transaction.atomic():
        locked = _lock(order)
        if locked.status not in PAYABLE:
            raise OrderNotPayable(
                f"Order {locked.order_bid} is {locked.status_name}; it cannot be paid.",
                order_bid=locked.order_bid,
                status=locked.status_name,
            )
        if provider.currencies is not None and locked.currency not in provider.currencies:
            raise CurrencyNotSupported(
                f"The {channel} channel does not take {locked.currency.upper()}.",
                channel=channel,
            )
        product = Product.objects.filter(product_bid=locked.product_bid).first()
        name = product.name if product else "Course"
        request = PaymentRequest(
            channel=channel,
            method=method,
            order_bid=locked.order_bid,
            attempt_bid=new_bid(),
            user_bid=locked.user_bid,
            product_bid=locked.product_bid,
            amount=to_minor(locked.payable_price, locked.currency),
            currency=locked.currency,
            subject=name,
            body=f"{name} ({locked.order_bid})",
            client_ip=client_ip,
            success_url=success_url,
            cancel_url=cancel_url,
            open_id=open_id,
            expires_at=locked.created_at + timedelta(seconds=settings.PAY_ORDER_EXPIRE_SECONDS),
            metadata={"order_bid": locked.order_bid},
        )
        attempt = provider.build_attempt(request)
        attempt.save()
        changes = {"payment_channel": channel}
        if locked.status == S.INIT:
            order_set_status(
                order=locked,
                to=S.UNPAID,
                source="api",
                actor=actor,
                message=f"payment started: {channel}:{method}",
                changes=changes,
            )
        else:
            locked.payment_channel = channel
            locked.save(update_fields=["payment_channel", "updated_at"])
        order_event_write(
            order=locked,
            kind=OrderEventKind.ATTEMPT,
            message=f"attempt {request.attempt_bid} via {channel}:{method}",
            source="api",
            actor=actor,
            data={"attempt_bid": request.attempt_bid, "amount": request.amount},
        )

    try:
        start = provider.start_payment(request)
    except ProviderError as exc:
        _attempt_failed(provider=provider, attempt=attempt, request=request, error=exc)
        raise
    with transaction.atomic():
        now = _lock(request.order_bid)
        attempt = provider.attempts_for(attempt_bid=request.attempt_bid).select_for_update().get()
        fields = provider.apply_start(attempt, start)
        # Cancelled or timed out while the provider was being asked: the payment now
        # exists there, so it is closed like any other attempt of a dead order.
        dead = now.status in (S.TIMEOUT, S.CANCELLED) and start.state != PAYMENT_SUCCEEDED
        if dead and attempt.status == AttemptStatus.CLOSED:
            attempt.status = AttemptStatus.PENDING  # closed unseen: reconciliation retries
            fields = [*fields, "status"]
        attempt.save(update_fields=fields)
    if dead:
        try:
            _attempt_close(provider, attempt, source=channel)
        except ProviderError:
            logger.warning("attempt %s of a dead order not closed yet", attempt.attempt_bid)
        raise OrderNotPayable(
            f"Order {now.order_bid} was {now.status_name} while its payment was starting.",
            order_bid=now.order_bid,
            status=now.status_name,
        )
    if start.state == PAYMENT_SUCCEEDED:
        # Applied from the provider's own record, so its amount is checked too.
        state = provider.fetch_payment(start.provider_payment_id)
        payment_apply(
            channel=channel,
            state=replace(state, attempt_bid=state.attempt_bid or request.attempt_bid),
            source=channel,
        )
    locked.refresh_from_db()
    return PaymentStarted(
        order=locked,
        attempt=attempt,
        channel=channel,
        method=method,
        client_data=dict(start.client_data),
    )


def _attempt_failed(*, provider, attempt, request: PaymentRequest, error: ProviderError) -> None:
    """Nothing can be paid on an attempt whose creation failed: mark it failed."""
    with transaction.atomic():
        order = _lock(request.order_bid)
        attempt = provider.attempts_for(attempt_bid=request.attempt_bid).select_for_update().get()
        fields = provider.apply_payment_state(
            attempt,
            PaymentState(
                provider_payment_id="",
                state=PAYMENT_FAILED,
                amount=request.amount,
                currency=request.currency,
                attempt_bid=request.attempt_bid,
                failure_code=error.code,
                failure_message=error.message,
            ),
        )
        attempt.status = AttemptStatus.FAILED
        attempt.save(update_fields=[*fields, "status"])
        order_event_write(
            order=order,
            kind=OrderEventKind.ATTEMPT,
            message=f"attempt {request.attempt_bid} failed to start: {error.code}",
            source=provider.channel,
            data={"error": error.message},
        )


def _find_attempt(provider, *, attempt_bid: str, provider_payment_id: str):
    attempts = provider.attempts_for(
        attempt_bid=attempt_bid, provider_payment_id=provider_payment_id
    )
    attempt = attempts.first()
    if attempt is None:
        raise AttemptNotFound(
            f"No {provider.channel} attempt {attempt_bid or provider_payment_id!r}.",
            attempt=attempt_bid or provider_payment_id,
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


def payment_apply(*, channel: str, state: PaymentState, source: str) -> Order:
    """Apply what a provider says of a payment (webhook, sync, reconciliation).

    Idempotent; never moves an order backwards. An amount or currency other than the
    attempt's is refused (AmountMismatch) and recorded on the order.
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
        attempt = type(attempt).objects.select_for_update().get(pk=attempt.pk)
        try:
            _check_money(attempt=attempt, amount=state.amount, currency=state.currency, what=source)
        except AmountMismatch as exc:
            mismatch = exc
        else:
            mismatch = None
        if mismatch is None:
            fields = provider.apply_payment_state(attempt, state)
            _apply_payment_to(
                channel=channel,
                order=order,
                attempt=attempt,
                state=state,
                source=source,
                fields=fields,
            )
            return order
    # Recorded outside the refused transaction, so the record survives the refusal.
    order_event_write(
        order=order,
        kind=OrderEventKind.PAYMENT,
        message=f"refused: {mismatch.message}",
        source=source,
        data={"code": mismatch.code, **{k: str(v) for k, v in mismatch.details.items()}},
    )
    raise mismatch


def _apply_payment_to(
    *, channel: str, order: Order, attempt, state: PaymentState, source: str, fields
) -> None:
    previous = attempt.status
    if state.state == PAYMENT_SUCCEEDED:
        if previous in (AttemptStatus.PAID, AttemptStatus.REFUNDED):
            attempt.save(update_fields=fields)
            return
        attempt.status = AttemptStatus.PAID
        attempt.save(update_fields=[*fields, "status"])
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
    new_status = {PAYMENT_FAILED: AttemptStatus.FAILED, PAYMENT_CLOSED: AttemptStatus.CLOSED}.get(
        state.state
    )
    closable = (AttemptStatus.PENDING, AttemptStatus.FAILED)
    if new_status is not None and (
        previous == AttemptStatus.PENDING
        or (new_status == AttemptStatus.CLOSED and previous in closable)
    ):
        attempt.status = new_status
        fields = [*fields, "status"]
        order_event_write(
            order=order,
            kind=OrderEventKind.PAYMENT,
            message=f"attempt {attempt.attempt_bid} {new_status.label}"
            + (f": {state.failure_code} {state.failure_message}" if state.failure_code else ""),
            source=source,
        )
    attempt.save(update_fields=fields)


def _order_paid(*, channel: str, order: Order, attempt, paid: Decimal, state, source: str) -> None:
    """A payment that pays ``order`` (locked, with the user's purchase lock held).

    Money received is never refused: a late payment on a timed-out or cancelled order
    pays it. Other unpaid orders of the same product are cancelled. A payment for a
    product the user already owns through another paid order is a duplicate purchase:
    refunded at once through its channel, or kept for staff, by
    ``PAY_DUPLICATE_PAYMENT_POLICY``.
    """
    late = order.status in (S.TIMEOUT, S.CANCELLED)
    siblings = Order.objects.live().filter(user_bid=order.user_bid, product_bid=order.product_bid)
    owned = siblings.filter(status=S.PAID).exclude(pk=order.pk).order_by("id").first()
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
        changes={"paid_price": paid, "payment_channel": channel},
    )
    for other in siblings.filter(status__in=PAYABLE).exclude(pk=order.pk):
        order_set_status(
            order=other,
            to=S.CANCELLED,
            source=source,
            message=f"cancelled: order {order.order_bid} paid for the same product",
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


# ---- needs attention ----


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


def payment_sync(*, order: Order, source: str = "sync") -> Order:
    """Ask the channel for the state of the order's latest attempt and apply it."""
    provider = registry.get_provider_any(order.payment_channel)
    recent = provider.attempt_model.objects.filter(order_bid=order.order_bid).order_by("-id")[:10]
    attempt = next((a for a in recent if a.provider_payment_id), None)
    if attempt is None:
        order.refresh_from_db()
        return order
    state = provider.fetch_payment(attempt.provider_payment_id)
    if not state.attempt_bid:
        state = replace(state, attempt_bid=attempt.attempt_bid)
    return payment_apply(channel=provider.channel, state=state, source=source)


# ---- refunds ----

# How long one process may take to hear back from the provider about a refund before
# another (reconciliation on another machine) may look it up and send it again.
SUBMIT_LEASE = timedelta(minutes=2)


def order_refundable_now(order: Order) -> Decimal:
    """What can still be refunded: paid, less refunds that succeeded, are pending, or
    await a second staff member's approval (refunds of a duplicate payment are not
    part of the order's totals)."""
    pending = _total(order.refunds.filter(status=RefundStatus.PENDING, duplicate_payment=False))
    return order.paid_price - order.refunded_price - pending - _awaiting_approval(order)


def _total(queryset) -> Decimal:
    return queryset.aggregate(total=Sum("amount"))["total"] or Decimal("0.00")


def _awaiting_approval(order: Order) -> Decimal:
    return _total(order.refund_approvals.filter(status=ApprovalStatus.AWAITING))


def refund_amount_checked(locked: Order, amount: Decimal | None) -> Decimal:
    """The amount to refund (default: all that is refundable), checked against what is
    refundable now. Call it holding the order's lock."""
    refundable = order_refundable_now(locked)
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
    return _total(refunds) + _awaiting_approval(locked)


def refund_needs_approval(locked: Order, amount: Decimal) -> bool:
    """Whether a staff refund of ``amount`` would bring the order's staff refund total
    past its currency's threshold (five refunds of 100 count as one of 500)."""
    threshold = approval_threshold(locked.currency)
    if threshold is None:
        return True
    total = staff_refund_total(locked) + amount
    return to_minor(total, locked.currency) > threshold


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


def refund_request(
    *,
    order: Order,
    amount: Decimal | None = None,
    reason: str,
    actor: Any = None,
    source: str = "api",
    approval: RefundApproval | None = None,
    approved_by: Any = None,
) -> Refund | RefundApproval:
    """Refund part or all of a paid order: a pending row under the order's lock, then
    the provider outside it. Concurrent requests can never refund more than was paid.

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
                approval=approval, actor=approved_by, status=ApprovalStatus.APPROVED
            )
            order_event_write(
                order=locked,
                kind=OrderEventKind.REFUND,
                message=f"refund of {approval.amount} {approval.currency.upper()} approved "
                f"(approval {approval.pk})",
                source=source,
                actor=approved_by,
                data={"approval": approval.pk},
            )
        if locked.status != S.PAID:
            raise OrderNotRefundable(
                f"Order {locked.order_bid} is {locked.status_name}; only a paid order can be "
                "refunded.",
                order_bid=locked.order_bid,
                status=locked.status_name,
            )
        amount = refund_amount_checked(locked, amount)
        provider = registry.get_provider_any(locked.payment_channel)
        attempt = _paying_attempt(provider, locked)
        if attempt is None:
            raise OrderNotRefundable(
                f"Order {locked.order_bid} has no paid {locked.payment_channel} attempt to "
                "refund (it was paid without a provider).",
                order_bid=locked.order_bid,
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


def refund_approval_decide(
    *, approval: RefundApproval, actor: Any, status: str, note: str = ""
) -> RefundApproval:
    """Decide an awaiting approval: the order's lock, then the approval's; refuses one
    already decided. Part of the caller's transaction."""
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


def _refund_note(refund: Refund, message: str) -> None:
    order_event_write(
        order=refund.order,
        kind=OrderEventKind.REFUND,
        message=f"refund {refund.refund_bid} {message}",
        source=refund.payment_channel,
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
    provider = registry.get_provider_any(refund.payment_channel)
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
    if not state.refund_bid:
        state = replace(state, refund_bid=refund.refund_bid)
    refund_apply(channel=refund.payment_channel, state=state, source=refund.payment_channel)


def refund_apply(
    *, channel: str, state: RefundState, source: str, refused_now: bool = False
) -> Refund | None:
    """Apply what a provider says of a refund (answer, webhook, reconciliation).

    Idempotent and order-tolerant: a succeeded refund stays succeeded, an order is
    refunded once refunds add up to what was paid, and a refund reported before the
    payment it refunds is kept for later (NotApplicableYet). Returns None for a failed
    refund made at the provider, which changes nothing here.
    """
    provider = registry.get_provider_any(channel)
    with transaction.atomic():
        refund = _find_refund(channel=channel, state=state)
        if refund is None:
            return _refund_from_provider(provider=provider, state=state, source=source)
        order = _lock(refund.order.order_bid)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
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
        if attempt is not None and attempt.status == AttemptStatus.PAID:
            attempt.status = AttemptStatus.REFUNDED
            attempt.save(update_fields=["status", "updated_at"])
        _refund_note(refund, f"of a duplicate payment ({refund.amount}) succeeded")
        return
    if order.status == S.REFUNDED:
        raise EventConflict(
            f"Refund {refund.refund_bid} succeeded, but order {order.order_bid} is already "
            "fully refunded.",
            order_bid=order.order_bid,
        )
    if order.status != S.PAID:
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
    if refunded == order.paid_price:
        if attempt is not None and attempt.status == AttemptStatus.PAID:
            attempt.status = AttemptStatus.REFUNDED
            attempt.save(update_fields=["status", "updated_at"])
        order_set_status(order=order, to=S.REFUNDED, source=source, message="fully refunded")


def _refund_reversed(*, order: Order, refund: Refund, provider, state: RefundState, source: str):
    """The provider says a refund that succeeded has failed after all (Stripe's
    refund.failed, a Ping++ refund reported failed): the money is back with us, not
    with the customer. The refund is failed, the order's refunded amount and status
    are restored (refunded -> paid, on the provider's word only), and staff are told."""
    refund.status = RefundStatus.FAILED
    refund.failure_code = (state.failure_code or "failed_after_success")[:255]
    refund.failure_message = state.failure_message
    refund.settled_at = timezone.now()
    attempt = provider.attempts_for(attempt_bid=refund.attempt_bid).first()
    if attempt is not None and attempt.status == AttemptStatus.REFUNDED:
        attempt.status = AttemptStatus.PAID
        attempt.save(update_fields=["status", "updated_at"])
    restored = ""
    if not refund.duplicate_payment:
        order.refunded_price = max(order.refunded_price - refund.amount, Decimal("0.00"))
        order.save(update_fields=["refunded_price", "updated_at"])
        restored = f"; refunded total back to {order.refunded_price}"
        if order.status == S.REFUNDED:
            order_set_status(
                order=order,
                to=S.PAID,
                source=source,
                message=f"refund {refund.refund_bid} failed after it succeeded: paid again",
                data={"refund_bid": refund.refund_bid},
                refund_reversal=True,
            )
            restored += ", status back to paid"
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


def _refund_from_provider(*, provider, state: RefundState, source: str) -> Refund | None:
    """A refund made at the provider (its dashboard): record it on its order."""
    attempt = provider.attempts_for(provider_payment_id=state.provider_payment_id).first()
    if attempt is None:
        raise AttemptNotFound(
            f"No {provider.channel} payment {state.provider_payment_id!r} for refund "
            f"{state.provider_refund_id!r}.",
            attempt=state.provider_payment_id,
        )
    order = _lock(attempt.order_bid)
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
    paying = _paying_attempt(provider, order) if order.status in (S.PAID, S.REFUNDED) else None
    duplicate = paying is not None and paying.attempt_bid != attempt.attempt_bid
    if not duplicate and order.status == S.REFUNDED:
        raise EventConflict(
            f"Refund {state.provider_refund_id} is for order {order.order_bid}, which is "
            "already fully refunded.",
            order_bid=order.order_bid,
        )
    if not duplicate and order.status != S.PAID:
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


# ---- reconciliation ----


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
            work.append(_attempt_work(provider, attempt))
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
    from payments.models import InboxStatus, WebhookEvent

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


def _attempt_work(provider, attempt) -> _Work:
    return _Work(
        "attempt",
        provider.channel,
        f"attempt {attempt.attempt_bid}",
        row=attempt,
        pending=attempt.status,
        settle=lambda: _attempt_reconcile(provider, attempt),
        check=lambda: _attempt_check(provider, attempt),
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
    from payments.models import InboxStatus

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
    from payments.models import WebhookEvent

    if attention.subject_kind == "attempt":
        provider = registry.get_provider_any(attention.channel)
        item = _attempt_work(
            provider, provider.attempts_for(attempt_bid=attention.subject_bid).get()
        )
    elif attention.subject_kind == "refund":
        item = _refund_work(Refund.objects.get(refund_bid=attention.subject_bid))
    else:
        item = _event_work(WebhookEvent.objects.get(pk=int(attention.subject_bid)))
    return _reconcile_one(ReconcileReport(), item).outcome == "settled"


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
    state = provider.fetch_payment(attempt.provider_payment_id)
    if not state.attempt_bid:
        state = replace(state, attempt_bid=attempt.attempt_bid)
    payment_apply(channel=provider.channel, state=state, source=f"{provider.channel}:reconcile")
    if state.state in (PAYMENT_PENDING, PAYMENT_FAILED):
        # Maybe still payable at the provider: close it if its order is dead (the close
        # that followed the cancellation or time-out failed).
        order = Order.objects.filter(order_bid=attempt.order_bid).first()
        if order is not None and order.status in (S.TIMEOUT, S.CANCELLED):
            _attempt_close(provider, attempt, source=f"{provider.channel}:reconcile")


@transaction.atomic
def _attempt_close_orphan(provider, attempt) -> None:
    order = _lock(attempt.order_bid)
    attempt = type(attempt).objects.select_for_update().get(pk=attempt.pk)
    if attempt.status != AttemptStatus.PENDING or attempt.provider_payment_id:
        return
    attempt.status = AttemptStatus.CLOSED
    attempt.save(update_fields=["status", "updated_at"])
    order_event_write(
        order=order,
        kind=OrderEventKind.ATTEMPT,
        message=f"attempt {attempt.attempt_bid} closed: the provider's answer was never "
        "recorded, so it could not be paid",
        source=f"{provider.channel}:reconcile",
    )


def _refund_reconcile(refund: Refund) -> None:
    provider = registry.get_provider_any(refund.payment_channel)
    attempt = provider.attempts_for(attempt_bid=refund.attempt_bid).get()
    if refund.provider_refund_id:
        state = provider.fetch_refund(attempt.provider_payment_id, refund.provider_refund_id)
        if not state.refund_bid:
            state = replace(state, refund_bid=refund.refund_bid)
        refund_apply(channel=refund.payment_channel, state=state, source="reconcile")
    else:
        refund_submit(refund=refund, provider_payment_id=attempt.provider_payment_id, retry=True)


# ---- what reconciliation would change (dry run: the provider is asked, nothing written) ----


def _attempt_check(provider, attempt) -> str:
    if not attempt.provider_payment_id:
        if attempt.status == AttemptStatus.PENDING:
            return "would close: the provider's answer was never recorded"
        return ""
    state = provider.fetch_payment(attempt.provider_payment_id)
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
    provider = registry.get_provider_any(refund.payment_channel)
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
    from payments.services import inbox_apply

    inbox_apply(row=event)


def _event_check(event) -> str:
    """A stored event is parsed again (a bad one is an error); applying it is left to a
    real run, since only applying tells whether it applies now."""
    provider = registry.get_provider_any(event.channel)
    from_payload = getattr(provider, "event_from_payload", None)
    if from_payload is not None and not event.headers:
        parsed = from_payload(json.loads(event.body))
    else:
        parsed = provider.parse_webhook(event.body.encode(), event.headers)
    return f"would apply the stored {parsed.kind} event again"
