"""The functions that read orders, their attempts, refunds and history."""

from __future__ import annotations

from typing import Any

from orders.models import Order, OrderEvent, Product
from payments import registry


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


def order_attempts(order: Order) -> list[Any]:
    """Every payment attempt of an order, of every channel, newest first (one query
    per channel)."""
    attempts = []
    for channel in registry.known_channels():
        try:
            model = registry.get_provider_any(channel).attempt_model
        except ImportError:
            continue
        attempts += list(model.objects.filter(order_bid=order.order_bid))
    return sorted(attempts, key=lambda a: a.created_at, reverse=True)


def order_history(order: Order):
    return OrderEvent.objects.filter(order=order).select_related("actor").order_by("id")
