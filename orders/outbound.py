"""What the platform hears of orders: the outbound events each change writes.

Each event is written in the transaction of its change (``bridge.outbox``), so the
platform hears of exactly what was committed, in order per order:

- ``order.paid``: paid through a provider (or a free product);
- ``order.refunded`` (refunded in full); ``refund.succeeded`` and ``refund.failed`` for
  each refund, ``refund.reversed`` for one the provider failed after it succeeded;
- ``order.cancelled`` and ``order.timed_out``;
- ``entitlement.granted`` and ``entitlement.revoked`` when the user's ownership of the
  product changes (paid, granted, a refund reversed; refunded in full, revoked), in
  order per user and product.

The platform's learning service needs only the ``entitlement.*`` events.
"""

from __future__ import annotations

from typing import Any

from bridge.outbox import event_write
from orders.models import Order, OrderStatus, Refund

S = OrderStatus
GRANT_CHANNEL = "grant"

ORDER_PAID = "order.paid"
ORDER_REFUNDED = "order.refunded"
ORDER_CANCELLED = "order.cancelled"
ORDER_TIMED_OUT = "order.timed_out"
REFUND_SUCCEEDED = "refund.succeeded"
REFUND_FAILED = "refund.failed"
REFUND_REVERSED = "refund.reversed"
ENTITLEMENT_GRANTED = "entitlement.granted"
ENTITLEMENT_REVOKED = "entitlement.revoked"
EVENT_TYPES = (
    ORDER_PAID,
    ORDER_REFUNDED,
    REFUND_SUCCEEDED,
    REFUND_FAILED,
    REFUND_REVERSED,
    ORDER_CANCELLED,
    ORDER_TIMED_OUT,
    ENTITLEMENT_GRANTED,
    ENTITLEMENT_REVOKED,
)


def order_data(order: Order) -> dict[str, Any]:
    """An order's public fields, as the API shows them (money as decimal strings)."""
    return {
        "order_bid": order.order_bid,
        "user_bid": order.user_bid,
        "product_bid": order.product_bid,
        "status": S(order.status).label,
        "status_code": order.status,
        "payment_channel": order.payment_channel,
        "currency": order.currency,
        "payable_amount": str(order.due_price),
        "list_amount": str(order.payable_price),
        "discount_amount": str(order.discount_price),
        "paid_amount": str(order.paid_price),
        "refunded_amount": str(order.refunded_price),
    }


def _write(order: Order, type: str, **extra: Any) -> None:
    event_write(type=type, subject=f"order:{order.order_bid}", data={**order_data(order), **extra})


def _entitlement(order: Order, type: str, **extra: Any) -> None:
    """An ``entitlement.*`` event: ordered per user and product (not per order), as an
    entitlement belongs to them; ``owned`` is what is true once it is committed."""
    data = {**order_data(order), "owned": type == ENTITLEMENT_GRANTED, **extra}
    subject = f"entitlement:{order.user_bid}:{order.product_bid}"
    event_write(type=type, subject=subject, data=data)


def _owned_through_another(order: Order) -> bool:
    """Whether the user owns the product through another live paid order. Called under
    their purchase lock (every service that changes ownership takes it first)."""
    return Order.objects.siblings_of(order, S.PAID).exists()


def status_changed(
    *, order: Order, from_status: int, to_status: int, source: str, data: dict | None
) -> None:
    """The events of a status change, in the transaction that made it. The entitlement
    events say when the user's ownership of the product changes, never when another
    order of theirs still owns it (a late second payment refunded, a second grant)."""
    why = {"source": source}
    if data and data.get("reason"):
        why["reason"] = data["reason"]
    if to_status == S.PAID:
        if from_status != S.REFUNDED and order.payment_channel != GRANT_CHANNEL:
            _write(order, ORDER_PAID)
        if not _owned_through_another(order):
            cause = "refund_reversed" if from_status == S.REFUNDED else _cause(order)
            _entitlement(order, ENTITLEMENT_GRANTED, **why, cause=cause)
    elif to_status == S.REFUNDED:
        _write(order, ORDER_REFUNDED)
        if from_status == S.PAID and not _owned_through_another(order):
            _entitlement(order, ENTITLEMENT_REVOKED, **why, cause="refunded")
    elif to_status == S.REVOKED:
        if from_status == S.PAID and not _owned_through_another(order):
            _entitlement(order, ENTITLEMENT_REVOKED, **why, cause="revoked")
    elif to_status == S.CANCELLED:
        _write(order, ORDER_CANCELLED, **why)
    elif to_status == S.TIMEOUT:
        _write(order, ORDER_TIMED_OUT)


def _cause(order: Order) -> str:
    if order.payment_channel == GRANT_CHANNEL:
        return "granted"
    return "free" if order.paid_price == 0 else "paid"


def refund_settled(*, order: Order, refund: Refund, type: str) -> None:
    """``refund.succeeded`` or ``refund.failed`` of ``refund``."""
    _write(
        order,
        type,
        refund={
            "refund_bid": refund.refund_bid,
            "amount": str(refund.amount),
            "currency": refund.currency,
            "status": refund.status,
            "reason": refund.reason,
            "duplicate_payment": refund.duplicate_payment,
            "failure_code": refund.failure_code,
        },
    )
