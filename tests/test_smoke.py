import pytest

from tests.factories import OrderFactory, PingxxOrderFactory, RefundFactory


@pytest.mark.django_db
def test_factories_build_valid_rows():
    order = OrderFactory(paid=True)
    PingxxOrderFactory(order_bid=order.order_bid)
    refund = RefundFactory(order=order)
    assert order.refundable_price == order.paid_price
    assert refund.currency == "cny"
