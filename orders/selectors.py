"""The functions that read orders, their attempts, refunds and history."""

from __future__ import annotations

from typing import Any

from django.db.models import DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from orders.models import (
    ApprovalStatus,
    Order,
    OrderEvent,
    OrderStatus,
    Product,
    Refund,
    RefundApproval,
    RefundStatus,
)


def user_bid_for(user: Any) -> str:
    """The ``user_bid`` of a Django user: its primary key, as text.

    Legacy orders carry the user ids of the old platform (32 hex characters); users
    of this service's own accounts are told apart by being decimal.
    """
    return str(user.pk)


def products_on_sale():
    return Product.objects.filter(active=True).order_by("name")


def orders_for_user(user: Any):
    return Order.objects.live().filter(user_bid=user_bid_for(user)).order_by("-id")


def _sees_everything(user: Any) -> bool:
    return bool(user.is_staff)


def orders_visible_to(user: Any) -> QuerySet[Order]:
    """The orders a user may see (staff: all), with ``paid_at`` and ``pending_refunds``
    annotated, so a page of orders costs one query whatever its size."""
    orders = Order.objects.live()
    if not _sees_everything(user):
        orders = orders.filter(user_bid=user_bid_for(user))
    paid_at = (
        OrderEvent.objects.filter(order=OuterRef("pk"), to_status=OrderStatus.PAID)
        .order_by("-id")
        .values("created_at")[:1]
    )
    pending = (
        Refund.objects.filter(
            order=OuterRef("pk"), status=RefundStatus.PENDING, duplicate_payment=False
        )
        .values("order")
        .annotate(total=Sum("amount"))
        .values("total")[:1]
    )
    awaiting = (
        RefundApproval.objects.filter(order=OuterRef("pk"), status=ApprovalStatus.AWAITING)
        .values("order")
        .annotate(total=Sum("amount"))
        .values("total")[:1]
    )
    money = DecimalField(max_digits=10, decimal_places=2)
    return orders.annotate(
        paid_at=Subquery(paid_at),
        # What order_refundable_now subtracts besides refunded_price.
        pending_refunds=Coalesce(
            Subquery(pending, output_field=money), Value(0), output_field=money
        )
        + Coalesce(Subquery(awaiting, output_field=money), Value(0), output_field=money),
    )


def refunds_visible_to(user: Any) -> QuerySet[Refund]:
    refunds = Refund.objects.select_related("order")
    if not _sees_everything(user):
        refunds = refunds.filter(order__user_bid=user_bid_for(user), order__deleted=0)
    return refunds
