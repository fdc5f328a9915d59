"""Orders: creation (one live order per user and product), reuse, cancellation,
time-out and the expiry run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders.errors import AlreadyPurchased, OrderNotPayable, ProductNotFound, TransitionNotAllowed
from orders.models import PRICE_DECIMAL_PLACES, Order, OrderEventKind, Product, new_bid
from orders.services.lifecycle import (
    PAYABLE,
    S,
    _expired,
    _lock,
    _purchase_lock_row,
    _purchase_orders,
    order_event_write,
    order_set_status,
)
from orders.services.payment_results import _close_attempts_after_commit
from orders.services.reconcile import Checked
from payments import registry
from payments_project.money import UnsupportedCurrency, exponent, to_major, to_minor
from promos import selectors as promo_selectors
from promos import services as promo_services
from promos.errors import CouponNotApplicable

# The channel of an order with nothing to pay: no provider is involved.
FREE = "free"


def order_create(
    *,
    user_bid: str,
    product_bid: str,
    channel: str | None = None,
    actor: Any = None,
    coupon_code: str = "",
    source: str = "api",
    free_only: bool = False,
) -> tuple[Order, bool]:
    """An order of ``product_bid`` for ``user_bid``; (order, created).

    The price comes from the product, less its promotions in force and the coupon
    ``coupon_code`` (reserved for the order; see ``promos``). An unexpired unpaid order
    of the same user and product is reused, its price refreshed, unless another coupon
    is asked for; a product already paid for is refused; an order with nothing to pay is
    paid at once (channel ``free``). Under the user's purchase lock, so concurrent calls
    give one live order. ``free_only``: refused (``coupon_not_applicable``, nothing
    written) unless the order ends paid with nothing to pay (an activation code).
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
    coupon_code = (coupon_code or "").strip()
    _purchase_lock_row(user_bid=user_bid, product_bid=product_bid)
    with transaction.atomic():
        mine = _purchase_orders(
            user_bid=user_bid,
            product_bid=product_bid,
            statuses=(S.PAID, *PAYABLE),
            newest_first=True,
        )
        if any(order.status == S.PAID for order in mine):
            raise AlreadyPurchased(
                f"The product {product.name!r} is already paid for.", product=product_bid
            )
        for order in mine:
            repriced = (order.payable_price, order.currency) != (product.price, product.currency)
            if _expired(order) or (repriced and (order.status == S.UNPAID or order.discount_price)):
                # An order with payment attempts or discounts keeps its price; it is timed
                # out (its attempts closed at the provider) and a new order carries the new
                # price.
                order_timeout(order=order, source="system")
                continue
            held = promo_selectors.order_coupon_code(order.order_bid) if coupon_code else ""
            if coupon_code and held.casefold() != coupon_code.casefold():
                _order_replace(order=order, coupon_code=coupon_code, actor=actor, source=source)
                continue
            if free_only:  # an unpaid order holding the code: something is left to pay
                raise _not_activation(coupon_code, order.due_price, order.currency)
            return _order_refresh(order=order, product=product, channel=channel), False
        return _order_new(
            user_bid=user_bid,
            product=product,
            channel=channel,
            actor=actor,
            coupon_code=coupon_code,
            source=source,
            free_only=free_only,
        ), True


def _not_activation(code: str, due: Decimal, currency: str) -> CouponNotApplicable:
    return CouponNotApplicable(
        f"Coupon {code!r} is not an activation code: it leaves {due} {currency.upper()} to pay.",
        coupon=code,
        reason="not_activation",
    )


def _order_replace(*, order: Order, coupon_code: str, actor, source: str) -> None:
    """Cancel the unpaid ``order`` for a new one with another code: its row, then the
    batches of both codes in one order, so that two buyers swapping codes never lock
    them crosswise."""
    locked = _lock(order)
    promo_services.batches_lock(
        order_bids=[order.order_bid], code=coupon_code, product_bid=order.product_bid
    )
    order_set_status(
        order=locked,
        to=S.CANCELLED,
        source=source,
        actor=actor,
        message=f"replaced by a new order with coupon {coupon_code}",
        locked=True,
    )
    _close_attempts_after_commit(order.order_bid, source)


def _order_new(
    *,
    user_bid: str,
    product: Product,
    channel: str | None,
    actor,
    coupon_code: str,
    source: str,
    free_only: bool = False,
) -> Order:
    """A new order (under the purchase lock, in the caller's transaction), its discounts
    reserved; paid at once when nothing is left to pay."""
    reservation = promo_services.discounts_prepare(
        user_bid=user_bid,
        product_bid=product.product_bid,
        label=product.name,
        currency=product.currency,
        list_amount=to_minor(product.price, product.currency),
        coupon_code=coupon_code,
    )
    quote = reservation.quote
    if free_only and quote.payable:
        raise _not_activation(
            coupon_code, to_major(quote.payable, product.currency), product.currency
        )
    discount = to_major(quote.discount, product.currency)
    order = Order.objects.create(
        order_bid=new_bid(),
        product_bid=product.product_bid,
        user_bid=user_bid,
        payable_price=product.price,
        discount_price=discount,
        paid_price=Decimal("0.00"),
        currency=product.currency,
        # The course's author, as the platform keeps it on its orders: what scopes the
        # support console for staff linked to creators.
        creator_bid=product.creator_bid,
        payment_channel=(channel or registry.default_channel()) if quote.payable else FREE,
        status=S.INIT,
    )
    # The discount lines as the API shows them (negative major units), so that the
    # answer need not read them back.
    order.discount_lines = [
        {"kind": line.kind, "label": line.label, "amount": line.major(order.currency)}
        for line in quote.lines
        if line.kind != "price"
    ]
    currency = product.currency.upper()
    message = f"created: {product.name}, {product.price} {currency}"
    if quote.discount:
        message += f", {discount} {currency} off: pays {order.due_price} {currency}"
    order_event_write(
        order=order,
        kind=OrderEventKind.NOTE,
        message=message,
        source=source,
        actor=actor,
        to_status=S.INIT,
        data={"lines": [line.as_dict(product.currency) for line in quote.lines]}
        if quote.discount
        else None,
    )
    # Last: taking the coupon locks its batch's row until the commit.
    promo_services.discounts_record(
        reservation=reservation,
        order_bid=order.order_bid,
        user_bid=user_bid,
        product_bid=product.product_bid,
    )
    if not quote.payable:
        order_set_status(
            order=order,
            to=S.PAID,
            source="system",
            actor=actor,
            message="nothing to pay: paid without a provider"
            if quote.discount
            else "free product: paid without a provider",
        )
    return order


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
