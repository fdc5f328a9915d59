"""What staff do to orders beyond the API (the console's services)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import Order, OrderStatus
from orders.services import staff as staff_services
from tests.factories import StaffFactory
from tests.sandbox import paid_through_sandbox

pytestmark = pytest.mark.usefixtures("sandbox_channel")


@pytest.mark.django_db
def test_marking_paid_by_hand_refuses_a_product_already_owned():
    from orders.errors import AlreadyPurchased

    owned = paid_through_sandbox(user_bid="buyer", price="19.90")
    other = Order.objects.create(
        order_bid="f" * 32,
        product_bid=owned.product_bid,
        user_bid="buyer",
        payable_price=Decimal("19.90"),
        status=OrderStatus.TIMEOUT,
    )
    with pytest.raises(AlreadyPurchased):
        staff_services.order_mark_paid_by_hand(order=other, actor=StaffFactory(), reason="bank")
    other.refresh_from_db()
    assert other.status == OrderStatus.TIMEOUT
