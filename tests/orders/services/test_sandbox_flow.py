"""The order lifecycle end to end through the sandbox channel (no network)."""

from decimal import Decimal

import pytest
from django.test import override_settings

from orders import services
from orders.errors import (
    AlreadyPurchased,
    OrderNotPayable,
    OrderNotRefundable,
    RefundExceedsRefundable,
)
from orders.models import OrderEvent, OrderStatus, RefundStatus
from payments.models import AttemptStatus, InboxStatus, SandboxAttempt, WebhookEvent
from payments.tasks import webhook_deliver
from tests.factories import ProductFactory
from tests.sandbox import sandbox_confirm

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox_channel")]


def test_buy_with_the_sandbox_then_refund_in_two_parts():
    product = ProductFactory(price=Decimal("19.90"), currency="cny")
    order, created = services.order_create(user_bid="u1", product_bid=product.product_bid)
    assert created and order.status == OrderStatus.INIT and order.payment_channel == "sandbox"

    started = services.payment_start(order=order)
    assert started.order.status == OrderStatus.UNPAID
    assert started.client_data["confirm_url"].endswith(f"/{started.attempt.attempt_bid}/")
    attempt = SandboxAttempt.objects.get(attempt_bid=started.attempt.attempt_bid)
    assert (attempt.amount, attempt.currency, attempt.status) == (
        1990,
        "cny",
        AttemptStatus.PENDING,
    )

    outcome, body, headers = sandbox_confirm(attempt.attempt_bid)
    assert outcome.http_status == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("19.90")
    event = WebhookEvent.objects.get(channel="sandbox")
    assert event.status == InboxStatus.APPLIED and event.order_bid == order.order_bid

    again = webhook_deliver(channel="sandbox", body=body, headers=headers)
    assert again.http_status == 200 and again.code == "duplicate"
    assert WebhookEvent.objects.count() == 1

    with pytest.raises(AlreadyPurchased):
        services.order_create(user_bid="u1", product_bid=product.product_bid)
    with pytest.raises(OrderNotPayable):
        services.payment_start(order=order)

    first = services.refund_request(order=order, amount=Decimal("5.00"), reason="partial")
    assert first.status == RefundStatus.SUCCEEDED
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.refunded_price == Decimal("5.00")
    with pytest.raises(RefundExceedsRefundable) as too_much:
        services.refund_request(order=order, amount=Decimal("15.00"), reason="too much")
    assert too_much.value.details["refundable"] == "14.90"

    rest = services.refund_request(order=order, reason="the rest")
    assert rest.amount == Decimal("14.90") and rest.status == RefundStatus.SUCCEEDED
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and order.refunded_price == order.paid_price
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.REFUNDED
    with pytest.raises(OrderNotRefundable):
        services.refund_request(order=order, reason="again")

    # A late repeat of the payment event never moves the order back to paid.
    services.payment_sync(order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED

    history = list(OrderEvent.objects.filter(order=order).values_list("to_status", flat=True))
    assert [s for s in history if s] == [
        OrderStatus.INIT,
        OrderStatus.UNPAID,
        OrderStatus.PAID,
        OrderStatus.REFUNDED,
    ]


def test_declined_payment_leaves_the_order_unpaid():
    product = ProductFactory()
    order, _ = services.order_create(user_bid="u2", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    outcome, _, _ = sandbox_confirm(started.attempt.attempt_bid, succeeded=False)
    assert outcome.http_status == 200
    order.refresh_from_db()
    attempt = SandboxAttempt.objects.get(attempt_bid=started.attempt.attempt_bid)
    assert order.status == OrderStatus.UNPAID
    assert attempt.status == AttemptStatus.FAILED and attempt.failure_code == "declined"


def test_unpaid_order_is_reused_with_its_price_refreshed():
    product = ProductFactory(price=Decimal("10.00"))
    order, created = services.order_create(user_bid="u3", product_bid=product.product_bid)
    product.price = Decimal("12.00")
    product.save()
    again, created_again = services.order_create(user_bid="u3", product_bid=product.product_bid)
    assert created and not created_again
    assert again.order_bid == order.order_bid and again.payable_price == Decimal("12.00")


def test_free_product_is_paid_at_once():
    product = ProductFactory(price=Decimal("0.00"))
    order, _ = services.order_create(user_bid="u4", product_bid=product.product_bid)
    assert order.status == OrderStatus.PAID and order.paid_price == 0
    assert SandboxAttempt.objects.count() == 0


@override_settings(PAY_ORDER_EXPIRE_SECONDS=60)
def test_expired_order_times_out_and_a_late_payment_is_still_money_received():
    from datetime import timedelta

    from django.utils import timezone

    from orders.models import Order

    product = ProductFactory()
    order, _ = services.order_create(user_bid="u5", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert services.orders_expire() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.TIMEOUT

    sandbox_confirm(started.attempt.attempt_bid)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    paid = OrderEvent.objects.get(order=order, to_status=OrderStatus.PAID)
    assert paid.data["late"] is True and "late" in paid.message

    _, created = services.order_create(user_bid="u6", product_bid=product.product_bid)
    assert created
