"""What the platform's backend does through the partner API: grant and revoke a
course (the old system's open API did exactly these), and keep products in step with
its courses.

A grant is a paid order of channel ``grant`` and amount 0, with who granted it (the
partner key) and why in its history; a revoke ends an entitlement without moving money
(status 507, no longer the 502 the platform's learning service reads as owned). Both
run under the user's purchase lock, so concurrent grants give one entitlement.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction

from bridge.identity import USER_BID
from orders.errors import EntitlementNotFound, ProductNotFound
from orders.models import Order, OrderEventKind, Product, new_bid
from orders.outbound import GRANT_CHANNEL
from orders.selectors import order_refunds_held
from orders.services.lifecycle import (
    PAYABLE,
    S,
    _purchase_lock_row,
    _purchase_orders,
    order_event_write,
    order_set_status,
)
from orders.services.payment_results import _close_attempts_after_commit
from payments_project.errors import InvalidInput


def _checked(user_bid: str, reason: str) -> str:
    if not isinstance(user_bid, str) or not USER_BID.fullmatch(user_bid):
        raise InvalidInput(
            "user_bid: letters, digits, '-' or '_', 1 to 36 characters.", code="invalid"
        )
    if not reason or not reason.strip():
        raise InvalidInput("A reason is needed.", code="reason_required")
    return reason.strip()[:255]


def _keeps_entitlement(order: Order) -> bool:
    """Paid, and not on its way to a full refund: a paid order whose pending refunds
    (or refunds awaiting approval) take all that is left would end the entitlement the
    grant asks for once they succeed."""
    if order.status != S.PAID:
        return False
    if order.paid_price == 0:
        return True
    return order.paid_price - order.refunded_price - order_refunds_held(order) > 0


def entitlement_grant(
    *, user_bid: str, product_bid: str, reason: str, source: str
) -> tuple[Order, bool]:
    """Grant ``product_bid`` to ``user_bid``: (order, created). Granting what is owned
    answers the paid order that owns it (unless refunds under way take all of it). The
    user's unpaid orders of the product are cancelled (their attempts closed at the
    providers once committed)."""
    reason = _checked(user_bid, reason)
    product = Product.objects.filter(product_bid=product_bid).first()
    if product is None:
        raise ProductNotFound(f"No product {product_bid!r}.", product=product_bid)
    _purchase_lock_row(user_bid=user_bid, product_bid=product_bid)
    with transaction.atomic():
        mine = _purchase_orders(
            user_bid=user_bid, product_bid=product_bid, statuses=(S.PAID, *PAYABLE)
        )
        owned = next((order for order in mine if _keeps_entitlement(order)), None)
        if owned is not None:
            return owned, False
        for unpaid in (order for order in mine if order.status in PAYABLE):
            order_set_status(
                order=unpaid,
                to=S.CANCELLED,
                source=source,
                message=f"cancelled: the product was granted ({reason})",
                data={"reason": reason},
            )
            _close_attempts_after_commit(unpaid.order_bid, source)
        order = Order.objects.create(
            order_bid=new_bid(),
            product_bid=product.product_bid,
            user_bid=user_bid,
            payable_price=Decimal("0.00"),
            paid_price=Decimal("0.00"),
            currency=product.currency,
            creator_bid=product.creator_bid,
            payment_channel=GRANT_CHANNEL,
            status=S.INIT,
        )
        order_event_write(
            order=order,
            kind=OrderEventKind.NOTE,
            message=f"created as a grant of {product.name} by {source}: {reason}",
            source=source,
            data={"reason": reason},
            to_status=S.INIT,
        )
        order_set_status(
            order=order,
            to=S.PAID,
            source=source,
            message=f"granted by {source}: {reason}",
            data={"reason": reason},
        )
    return order, True


def entitlement_revoke(*, user_bid: str, product_bid: str, reason: str, source: str) -> Order:
    """End the user's entitlement to ``product_bid``: each paid order of it becomes
    revoked, with who and why in its history; no money moves (a refund stays possible).
    Nothing owned: ``entitlement_not_found``."""
    reason = _checked(user_bid, reason)
    _purchase_lock_row(user_bid=user_bid, product_bid=product_bid)
    with transaction.atomic():
        owned = _purchase_orders(user_bid=user_bid, product_bid=product_bid, statuses=(S.PAID,))
        if not owned:
            raise EntitlementNotFound(
                f"{user_bid} does not own {product_bid}.", user_bid=user_bid, product=product_bid
            )
        for order in owned:
            order_set_status(
                order=order,
                to=S.REVOKED,
                source=source,
                message=f"revoked by {source}: {reason}",
                data={"reason": reason},
            )
    return owned[0]


def product_upsert(
    *,
    product_bid: str,
    name: str,
    price: Decimal,
    currency: str,
    active: bool,
    description: str | None = None,
    creator_bid: str | None = None,
) -> tuple[Product, bool]:
    """Create or update the product ``product_bid`` (a platform course): (product,
    created). Open orders keep their price until they are used again (repriced then).
    Concurrent first PUTs of one product make it once; the others update it.
    ``description`` and ``creator_bid`` (the course's author) are kept when not given."""
    fields = {"name": name, "price": price, "currency": currency, "active": active}
    if description is not None:
        fields["description"] = description
    if creator_bid is not None:
        fields["creator_bid"] = creator_bid
    while True:
        with transaction.atomic():
            product = Product.objects.select_for_update().filter(product_bid=product_bid).first()
            if product is not None:
                for field, value in fields.items():
                    setattr(product, field, value)
                product.save()
                return product, False
            try:
                with transaction.atomic():
                    return Product.objects.create(product_bid=product_bid, **fields), True
            except IntegrityError:  # made meanwhile: lock it and update it
                continue
