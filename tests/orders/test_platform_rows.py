"""The platform's rows: creator billing's attempts (invisible), the orders of its native
Alipay / WeChat Pay (shown with their attempts), and orders of creators' accounts this
service holds no keys of (refused)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders import selectors, services
from orders.errors import RefundCurrencyMismatch
from orders.models import Refund
from orders.services import refunds
from payments.integrations import IntegrationUnavailable
from payments.models import AlipayOrder, PingxxOrder, StripeOrder, WechatpayOrder
from tests.factories import (
    OrderFactory,
    PingxxOrderFactory,
    StripeOrderFactory,
    UserFactory,
)
from tests.orders.test_api import client_for, own_order

pytestmark = pytest.mark.django_db


def native_attempt(model, order, *, status=1, domain="order", bid="n1"):
    now = timezone.now()
    return model.objects.create(
        **{model.attempt_bid_field: bid},
        biz_domain=domain,
        bill_order_bid="" if domain == "order" else "bill1",
        creator_bid="",
        user_bid=order.user_bid if domain == "order" else "",
        product_bid=order.product_bid if domain == "order" else "",
        order_bid=order.order_bid if domain == "order" else "",
        provider_attempt_id=bid,
        transaction_id="2026120722001" + bid,
        channel="alipay_qr",
        amount=1990,
        currency="CNY",
        status=status,
        raw_status="TRADE_SUCCESS",
        raw_request={"out_trade_no": bid},
        raw_response={"code": "10000"},
        raw_notification="{}",
        metadata={"course_bid": order.product_bid},
        deleted=0,
        created_at=now,
        updated_at=now,
    )


def test_creator_billing_rows_are_invisible_to_the_service():
    order = OrderFactory(paid=True)
    mine = PingxxOrderFactory(order_bid=order.order_bid)
    PingxxOrderFactory(order_bid="", biz_domain="billing", bill_order_bid="bill1")
    stripe_bill = StripeOrderFactory(order_bid="", biz_domain="billing", bill_order_bid="b2")
    native_attempt(AlipayOrder, order, domain="billing", bid="bill-ali")

    assert list(PingxxOrder.objects.all()) == [mine]
    assert not StripeOrder.objects.filter(pk=stripe_bill.pk).exists()
    assert not AlipayOrder.objects.exists()
    # Still there, untouched, for the billing code.
    assert PingxxOrder._base_manager.count() == 2
    assert AlipayOrder._base_manager.count() == 1


@pytest.mark.parametrize(
    ("channel", "model"), [("alipay", AlipayOrder), ("wechatpay", WechatpayOrder)]
)
def test_a_native_order_shows_its_attempts(channel, model):
    user = UserFactory()
    order = own_order(user, paid=True, payment_channel=channel, payable_price=Decimal("19.90"))
    native_attempt(model, order)
    body = client_for(user).get(f"/api/orders/{order.order_bid}/").json()
    assert body["payment_channel"] == channel
    [attempt] = body["attempts"]
    assert attempt == attempt | {
        "payment_channel": channel,
        "attempt_bid": "n1",
        "amount": "19.90",
        "currency": "cny",
        "status": "paid",
        "status_code": 1,
        "runs_here": True,
    }


def test_the_admin_shows_a_native_order_with_its_attempts(admin_client):
    order = OrderFactory(paid=True, payment_channel="alipay")
    attempt = native_attempt(AlipayOrder, order, bid="ali-attempt-1")
    page = admin_client.get(f"/admin/orders/order/{order.pk}/change/")
    assert page.status_code == 200
    assert b"ali-attempt-1" in page.content
    listing = admin_client.get("/admin/payments/alipayorder/")
    assert listing.status_code == 200 and b"ali-attempt-1" in listing.content
    detail = admin_client.get(f"/admin/payments/alipayorder/{attempt.pk}/change/")
    assert detail.status_code == 200 and b"TRADE_SUCCESS" in detail.content


def test_an_order_of_a_channel_without_provider_syncs_as_it_is():
    user = UserFactory()
    order = own_order(user, paid=True, payment_channel="free", paid_price=Decimal("0.00"))
    response = client_for(user).post(f"/api/orders/{order.order_bid}/sync/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "paid"
    assert selectors.order_attempts(order) == []


def test_a_refund_in_another_currency_than_the_payment_is_refused_and_recorded(settings):
    """An order whose currency is not its payment's (a platform Stripe order written
    after adoption keeps cny): nothing is sent, the refusal is in its history."""
    order = OrderFactory(paid=True, payment_channel="stripe", currency="cny")
    StripeOrderFactory(order_bid=order.order_bid, status=1, currency="usd", amount=1990)
    with pytest.raises(RefundCurrencyMismatch):
        refunds.refund_request(order=order, reason="asked", source="test")
    assert not Refund.objects.filter(order=order).exists()
    event = order.events.latest("id")
    assert "refund refused" in event.message and event.data["code"] == "currency_mismatch"


def test_an_order_paid_into_an_account_unknown_here_is_not_refunded_here():
    """A Stripe order of a creator's own Stripe account (the platform's integration,
    whose keys this service does not hold): refused, never sent with the platform's."""
    order = OrderFactory(paid=True, payment_channel="stripe", payment_integration_bid="int-1")
    StripeOrderFactory(order_bid=order.order_bid, status=1, currency="cny", amount=1990)
    with pytest.raises(IntegrationUnavailable):
        refunds.refund_request(order=order, reason="asked", source="test")
    with pytest.raises(IntegrationUnavailable):
        services.payment_sync(order=order)
    assert not Refund.objects.filter(order=order).exists()


def test_an_orders_attempts_on_every_channel_come_in_one_query(django_assert_num_queries):
    order = OrderFactory(paid=True, payment_channel="stripe")
    old = timezone.now() - timedelta(hours=2)
    PingxxOrderFactory(
        order_bid=order.order_bid, transaction_no="t-1", charge_id="ch_1", channel="wx_pub_qr"
    )
    PingxxOrder.objects.filter(transaction_no="t-1").update(created_at=old)
    StripeOrderFactory(
        order_bid=order.order_bid,
        stripe_order_bid="s-1",
        payment_intent_id="",
        checkout_session_id="cs_1",
        currency="usd",
        amount=699,
        status=1,
    )
    with django_assert_num_queries(1):
        attempts = selectors.order_attempts(order)
    assert [
        (a["payment_channel"], a["attempt_bid"], a["method"], a["provider_payment_id"])
        for a in attempts
    ] == [("stripe", "s-1", "checkout_session", "cs_1"), ("pingxx", "t-1", "wx_pub_qr", "ch_1")]
    assert (attempts[0]["amount"], attempts[0]["currency"], attempts[0]["status"]) == (
        "6.99",
        "usd",
        "paid",
    )
