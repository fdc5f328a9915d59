"""Alipay and WeChat Pay, direct, end to end: the services, each provider against its
loopback double, and the notification endpoints; the same guarantees as the other
channels (inbox first, repeats, forgeries, late and out-of-order news, amounts checked,
reconciliation, closing, events to the platform)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from bridge.models import OutboundEvent
from orders import services
from orders.models import Order, OrderEvent, OrderStatus, RefundStatus
from payments.models import (
    AlipayOrder,
    AttemptStatus,
    InboxStatus,
    SignatureStatus,
    WebhookEvent,
    WechatpayOrder,
)
from payments_project.db import new_bid
from tests.factories import ProductFactory
from tests.threads import run_together


@dataclass
class Native:
    """One native channel under test: its double, and how its buyer pays and how its
    notifications are posted."""

    channel: str
    method: str
    model: type
    double: Any
    keys: Any

    @property
    def url(self) -> str:
        return f"/webhooks/{self.channel}/"

    def pay(self, attempt_bid: str) -> None:
        self.double.pay(attempt_bid)

    def paid_at_provider(self, attempt_bid: str) -> bool:
        if self.channel == "alipay":
            return self.double.trades[attempt_bid]["trade_status"] == "TRADE_SUCCESS"
        return self.double.orders[attempt_bid]["trade_state"] == "SUCCESS"

    def notification(self, attempt_bid: str, *, forged: bool = False, **fields):
        """(body, content type, headers) of the provider's payment notification."""
        if self.channel == "alipay":
            key = self.keys.stranger if forged else None
            body = self.double.notification(attempt_bid, key=key, **fields)
            return body, "application/x-www-form-urlencoded", {}
        options = {"key": self.keys.stranger} if forged else {}
        if fields:
            resource = {**self.double.transaction(attempt_bid), **fields}
            body, headers = self.double.notification("TRANSACTION.SUCCESS", resource, **options)
        else:
            body, headers = self.double.payment_notification(attempt_bid, **options)
        return body, "application/json", headers

    def notify(self, client, attempt_bid: str, *, url: str = "", **options):
        body, content_type, headers = self.notification(attempt_bid, **options)
        return client.post(url or self.url, body, content_type=content_type, headers=headers)

    def wrong_amount(self) -> dict:
        if self.channel == "alipay":
            return {"total_amount": "0.01"}
        return {"amount": {"total": 1, "payer_total": 1, "currency": "CNY"}}

    def provider_refunded(self, attempt_bid: str) -> int:
        """What the double holds as refunded on the payment, in fen."""
        if self.channel == "alipay":
            return int(Decimal(self.double._refunded(self.double.trades[attempt_bid])) * 100)
        return sum(
            r["amount"]["refund"]
            for r in self.double.refunds.values()
            if r["out_trade_no"] == attempt_bid
        )


@pytest.fixture(params=["alipay", "wechatpay"])
def native(request) -> Native:
    channel = request.param
    request.getfixturevalue(f"{channel}_channel")
    double = request.getfixturevalue(f"{channel}_double")
    keys = request.getfixturevalue(f"{channel}_keys")
    if channel == "alipay":
        return Native(channel, "alipay_qr", AlipayOrder, double, keys)
    return Native(channel, "wx_pub_qr", WechatpayOrder, double, keys)


def unpaid_order(native: Native, price: str = "19.90", **product):
    product = ProductFactory(price=Decimal(price), currency="cny", **product)
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(order=order, method=native.method)
    attempt = native.model.objects.get(provider_attempt_id=started.attempt.attempt_bid)
    return order, attempt, started


def status_of(order: Order) -> int:
    return Order.objects.values_list("status", flat=True).get(pk=order.pk)


@pytest.mark.django_db
def test_pay_refund_in_two_parts_and_repeats_change_nothing(client, native, settings):
    settings.PLATFORM_WEBHOOK_URL = "http://127.0.0.1:9/events"
    order, attempt, started = unpaid_order(native)
    assert started.client_data["qr_url"]
    assert attempt.channel == native.method and attempt.amount == 1990
    assert attempt.integration_bid == ""

    native.pay(attempt.attempt_bid)
    response = native.notify(client, attempt.attempt_bid)
    assert response.status_code == 200, response.content
    if native.channel == "alipay":
        assert response.content == b"success"
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("19.90")
    assert attempt.status == AttemptStatus.PAID and attempt.transaction_id
    assert OutboundEvent.objects.filter(type="order.paid").count() == 1

    first = services.refund_request(order=order, amount=Decimal("9.90"), reason="partial")
    assert first.status == RefundStatus.SUCCEEDED, first.failure_message
    rest = services.refund_request(order=order, reason="the rest")
    assert rest.amount == Decimal("10.00") and rest.status == RefundStatus.SUCCEEDED
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and order.refunded_price == Decimal("19.90")
    assert attempt.status == AttemptStatus.REFUNDED
    assert native.provider_refunded(attempt.attempt_bid) == 1990

    # A repeated and a late notification of the payment change nothing.
    assert native.notify(client, attempt.attempt_bid).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).count() == 1


@pytest.mark.django_db
def test_the_same_notification_twice_is_stored_once(client, native):
    order, attempt, _ = unpaid_order(native)
    native.pay(attempt.attempt_bid)
    body, content_type, headers = native.notification(attempt.attempt_bid)
    for _ in range(2):
        response = client.post(native.url, body, content_type=content_type, headers=headers)
        assert response.status_code == 200
    assert WebhookEvent.objects.get().status == InboxStatus.APPLIED
    assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).count() == 1


@pytest.mark.django_db
def test_a_forged_notification_is_refused_and_nothing_is_applied(client, native):
    order, attempt, _ = unpaid_order(native)
    native.pay(attempt.attempt_bid)
    response = native.notify(client, attempt.attempt_bid, forged=True)
    assert response.status_code == 401
    if native.channel == "alipay":
        assert response.content == b"failure"
    else:
        assert response.json()["code"] == "FAIL"
    assert status_of(order) == OrderStatus.UNPAID
    row = WebhookEvent.objects.get()
    assert row.signature_status == SignatureStatus.INVALID and row.event_id is None


@pytest.mark.django_db
def test_a_signed_notification_of_another_amount_is_refused_and_recorded(client, native):
    order, attempt, _ = unpaid_order(native)
    native.pay(attempt.attempt_bid)
    response = native.notify(client, attempt.attempt_bid, **native.wrong_amount())
    assert response.status_code == 400
    assert status_of(order) == OrderStatus.UNPAID
    assert WebhookEvent.objects.get().status == InboxStatus.REJECTED
    assert order.events.filter(data__code="amount_mismatch").exists()


@pytest.mark.django_db
def test_a_notification_of_another_app_is_refused(client, native):
    order, attempt, _ = unpaid_order(native)
    native.pay(attempt.attempt_bid)
    other = {"app_id": "2021000000009999"} if native.channel == "alipay" else {"appid": "wxother"}
    response = native.notify(client, attempt.attempt_bid, **other)
    assert response.status_code == 400
    assert status_of(order) == OrderStatus.UNPAID


@pytest.mark.django_db
def test_news_of_a_payment_not_recorded_yet_is_kept_for_a_retry(client, native):
    """Out of order: the notification outruns the attempt's own commit."""
    order, attempt, _ = unpaid_order(native)
    native.pay(attempt.attempt_bid)
    body, content_type, headers = native.notification(attempt.attempt_bid)
    native.model._base_manager.filter(pk=attempt.pk).update(provider_attempt_id="elsewhere")
    renamed = {native.model.attempt_bid_field: "elsewhere"}
    native.model._base_manager.filter(pk=attempt.pk).update(**renamed)
    response = client.post(native.url, body, content_type=content_type, headers=headers)
    assert response.status_code == 503
    assert WebhookEvent.objects.get().status == InboxStatus.FAILED
    native.model._base_manager.filter(pk=attempt.pk).update(
        provider_attempt_id=attempt.attempt_bid,
        **{native.model.attempt_bid_field: attempt.attempt_bid},
    )
    response = client.post(native.url, body, content_type=content_type, headers=headers)
    assert response.status_code == 200
    assert status_of(order) == OrderStatus.PAID


@pytest.mark.django_db
def test_a_late_payment_pays_an_order_that_timed_out(client, native):
    order, attempt, _ = unpaid_order(native)
    services.order_timeout(order=order)
    assert status_of(order) == OrderStatus.TIMEOUT
    native.pay(attempt.attempt_bid)  # paid at the provider before the close got there
    assert native.notify(client, attempt.attempt_bid).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert "late" in order.events.filter(to_status=OrderStatus.PAID).get().message


@pytest.mark.django_db
def test_reconciliation_settles_a_payment_never_notified(native):
    order, attempt, _ = unpaid_order(native)
    native.pay(attempt.attempt_bid)
    stale = timezone.now() - timedelta(minutes=10)
    native.model.objects.filter(pk=attempt.pk).update(created_at=stale, updated_at=stale)
    report = services.payments_reconcile(older_than_seconds=60)
    assert report.settled == 1, report.errors
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


@pytest.mark.django_db
def test_cancelling_closes_the_payment_at_the_provider(native, django_capture_on_commit_callbacks):
    order, attempt, _ = unpaid_order(native)
    if native.channel == "alipay":
        native.double.scan(attempt.attempt_bid)  # a trade exists at Alipay once scanned
    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order=order)
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.CLOSED
    if native.channel == "alipay":
        assert native.double.trades[attempt.attempt_bid]["trade_status"] == "TRADE_CLOSED"
    else:
        assert native.double.orders[attempt.attempt_bid]["trade_state"] == "CLOSED"


@pytest.mark.django_db
def test_expiry_times_the_order_out_and_closes_its_payment(
    native, django_capture_on_commit_callbacks
):
    order, attempt, _ = unpaid_order(native)
    if native.channel == "alipay":
        native.double.scan(attempt.attempt_bid)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.orders_expire() == 1
    attempt.refresh_from_db()
    assert status_of(order) == OrderStatus.TIMEOUT
    assert attempt.status == AttemptStatus.CLOSED


@pytest.mark.django_db
def test_a_refund_above_what_is_left_is_refused_before_the_provider(native):
    order, attempt, _ = unpaid_order(native, "10.00")
    native.pay(attempt.attempt_bid)
    services.payment_sync(order=order)
    services.refund_request(order=order, amount=Decimal("6.00"), reason="part")
    with pytest.raises(Exception) as refused:
        services.refund_request(order=order, amount=Decimal("5.00"), reason="too much")
    assert refused.value.code == "refund_exceeds_refundable"
    assert native.provider_refunded(attempt.attempt_bid) == 600


@pytest.mark.django_db
def test_the_platforms_own_rows_are_refunded_and_reconciled_here(native):
    """An order the platform's own Alipay / WeChat Pay took before the switch: its row
    (no integration recorded, the order's none) is refunded and synced through the
    provider with the platform's keys."""
    order, attempt, _ = unpaid_order(native, "19.90")
    native.pay(attempt.attempt_bid)
    # As the platform wrote it: no metadata of this service's, status from its notify.
    native.model.objects.filter(pk=attempt.pk).update(metadata={"course_bid": "c1"}, status=1)
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.PAID, paid_price=Decimal("19.90"), payment_channel=native.channel
    )
    attempt.refresh_from_db()
    assert attempt.integration_bid is None
    order.refresh_from_db()
    synced = services.payment_sync(order=order)
    assert synced.status == OrderStatus.PAID
    refund = services.refund_request(order=order, reason="asked")
    assert refund.status == RefundStatus.SUCCEEDED
    assert native.provider_refunded(attempt.attempt_bid) == 1990


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_refunds_never_exceed_what_was_paid(native):
    order, attempt, _ = unpaid_order(native, "19.90")
    native.pay(attempt.attempt_bid)
    services.payment_sync(order=order)
    results = run_together(
        lambda i: services.refund_request(order=order, amount=Decimal("5.00"), reason=f"r{i}")
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert {type(r).__name__ for r in refused} == {"RefundExceedsRefundable"}
    assert len(refused) == 17
    order.refresh_from_db()
    assert order.refunded_price == Decimal("15.00")
    assert native.provider_refunded(attempt.attempt_bid) == 1500


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_apply_once(native):
    order, attempt, _ = unpaid_order(native)
    native.pay(attempt.attempt_bid)
    body, content_type, headers = native.notification(attempt.attempt_bid)
    results = run_together(
        lambda i: (
            Client().post(native.url, body, content_type=content_type, headers=headers).status_code
        )
    )
    assert results == [200] * 20
    assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).count() == 1
    assert WebhookEvent.objects.get().status == InboxStatus.APPLIED


def test_an_unknown_integration_in_the_url_is_refused(client, db, native):
    response = client.post(f"{native.url}{new_bid()}/", b"x=1", content_type="text/plain")
    assert response.status_code == 404
    assert WebhookEvent.objects.get().rejection_code == "webhook_integration_unknown"
