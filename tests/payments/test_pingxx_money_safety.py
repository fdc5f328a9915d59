"""Money stays right when Ping++ answers badly, customers pay twice, or events conflict."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from orders import selectors, services
from orders.models import OrderEvent, OrderStatus, Refund, RefundStatus
from payments.models import AttemptStatus, InboxStatus, PingxxOrder, WebhookEvent
from payments.providers.base import ProviderBadResponse, ProviderUnavailable
from payments_project.money import UnsupportedCurrency
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

URL = "/webhooks/pingxx/"


def deliver(client, double, event):
    body, signature = double.sign_event(event)
    return client.post(
        URL, body, content_type="application/json",
        headers={"x-pingplusplus-signature": signature},
    )  # fmt: skip


def paid_order(double, price="19.90"):
    product = ProductFactory(price=Decimal(price))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    double.pay(started.attempt.charge_id)
    services.payment_sync(order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order, PingxxOrder.objects.get(pk=started.attempt.pk)


def make_old(refund):
    long_ago = timezone.now() - timedelta(hours=1)
    Refund.objects.filter(pk=refund.pk).update(created_at=long_ago, submitted_at=long_ago)


def test_an_unreadable_refund_answer_leaves_the_refund_pending_not_failed(
    pingxx_channel, pingxx_double
):
    order, _ = paid_order(pingxx_double)
    pingxx_double.fail_next(200, body=b"<html>not json</html>")
    with pytest.raises(ProviderBadResponse):
        services.refund_request(order=order, amount=Decimal("5.00"), reason="r")
    refund = Refund.objects.get(order=order)
    assert refund.status == RefundStatus.PENDING
    assert selectors.order_refundable_amount(order) == Decimal("14.90")  # still counted

    make_old(refund)
    report = services.payments_reconcile(older_than_seconds=60)
    assert report.errors == []
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED


def test_a_rate_limited_lookup_leaves_the_refund_pending(pingxx_channel, pingxx_double):
    order, _ = paid_order(pingxx_double)
    pingxx_double.fail_next(502)
    with pytest.raises(ProviderUnavailable):
        services.refund_request(order=order, reason="r")
    refund = Refund.objects.get(order=order)
    make_old(refund)
    pingxx_double.fail_next(403, body=b'{"error": {"type": "rate_limit_error", "message": "slow"}}')
    report = services.payments_reconcile(older_than_seconds=60)
    assert len(report.errors) == 1
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING
    assert pingxx_double.refunds == {}


def test_only_one_process_sends_a_refund_at_a_time(pingxx_channel, pingxx_double):
    order, attempt = paid_order(pingxx_double)
    pingxx_double.fail_next(502)
    with pytest.raises(ProviderUnavailable):
        services.refund_request(order=order, reason="r")
    refund = Refund.objects.get(order=order)
    make_old(refund)
    assert services._refund_claim(refund) is True
    assert services._refund_claim(refund) is False  # another process holds the lease
    services.refund_submit(refund=refund, provider_payment_id=attempt.charge_id, retry=True)
    assert pingxx_double.refunds == {}  # this call did not win the claim: nothing sent


def test_a_second_payment_is_refunded_automatically_and_kept_out_of_the_totals(
    client, pingxx_channel, pingxx_double, django_capture_on_commit_callbacks
):
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    first = services.payment_start(order=order, method="alipay_qr").attempt
    second = services.payment_start(order=order, method="wx_pub_qr").attempt
    for attempt in (first, second):
        pingxx_double.pay(attempt.charge_id)
        event = pingxx_double.charge_succeeded_event(attempt.charge_id)
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(client, pingxx_double, event).status_code == 200

    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert (order.paid_price, order.refunded_price) == (Decimal("19.90"), Decimal("0.00"))
    duplicate = Refund.objects.get(order=order)
    assert duplicate.duplicate_payment and duplicate.status == RefundStatus.SUCCEEDED
    assert duplicate.attempt_bid == second.attempt_bid
    assert PingxxOrder.objects.get(pk=second.pk).status == AttemptStatus.REFUNDED
    assert OrderEvent.objects.filter(order=order, data__duplicate_payment=True).exists()

    # The customer's own refund goes to the payment that paid the order.
    refund = services.refund_request(order=order, reason="changed mind")
    assert refund.attempt_bid == first.attempt_bid and refund.amount == Decimal("19.90")
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    charged = {pingxx_double.refunds[r]["charge"] for r in pingxx_double.refunds}
    assert charged == {first.charge_id, second.charge_id}


def test_a_refund_event_for_a_fully_refunded_order_is_recorded_not_retried(
    client, pingxx_channel, pingxx_double
):
    order, attempt = paid_order(pingxx_double, "10.00")
    services.refund_request(order=order, reason="all")
    # Ping++ reports one more refund of the charge, made elsewhere: more than was paid.
    extra = {
        "id": "re_elsewhere0000000000000", "object": "refund", "charge": attempt.charge_id,
        "amount": 500, "status": "succeeded", "succeed": True, "metadata": {},
    }  # fmt: skip
    response = deliver(client, pingxx_double, pingxx_double.event("refund.succeeded", extra))
    assert response.status_code == 200 and response.json()["code"] == "event_conflict"
    row = WebhookEvent.objects.get(channel="pingxx")
    assert row.status == InboxStatus.REJECTED
    order.refresh_from_db()
    assert order.refunded_price == Decimal("10.00")


def test_a_failed_refund_made_at_the_provider_changes_nothing(
    client, pingxx_channel, pingxx_double
):
    order, attempt = paid_order(pingxx_double)
    pingxx_double.refund_status = "failed"
    made = pingxx_double._create_refund(pingxx_double.charges[attempt.charge_id], {"amount": 500})
    event = pingxx_double.event("refund.succeeded", made)  # the event names the status
    assert deliver(client, pingxx_double, event).status_code == 200
    assert not Refund.objects.filter(order=order).exists()
    assert selectors.order_refundable_amount(order) == Decimal("19.90")


def test_an_order_with_attempts_keeps_its_price_when_the_product_is_repriced(
    pingxx_channel, pingxx_double
):
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    product.price = Decimal("29.90")
    product.save()
    newer, created = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    assert created and newer.payable_price == Decimal("29.90")
    order.refresh_from_db()
    assert order.status == OrderStatus.TIMEOUT and order.payable_price == Decimal("19.90")
    # The old charge can still be paid: it pays the old order, at the old price.
    pingxx_double.pay(attempt.charge_id)
    services.payment_sync(order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("19.90")


def test_three_decimal_currencies_are_refused_not_rounded(pingxx_channel):
    product = ProductFactory.build(price=Decimal("1.250"), currency="kwd")
    with pytest.raises(ValidationError):
        product.full_clean()
    product = ProductFactory(price=Decimal("1.25"), currency="kwd")
    with pytest.raises(UnsupportedCurrency):
        services.order_create(user_bid="buyer", product_bid=product.product_bid)


@pytest.mark.django_db
def test_a_stored_signed_channel_event_without_its_signature_is_never_trusted(settings):
    """Only a channel verified upstream (Stripe, by dj-stripe) is read back from its
    stored payload; a sandbox or Ping++ row without its signature header is refused."""
    import json as json_module

    from payments.models import InboxStatus, WebhookEvent
    from payments.providers.base import WebhookSignatureInvalid
    from payments.services import stored_event

    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = ["sandbox"]
    row = WebhookEvent.objects.create(
        channel="sandbox",
        event_id="evt_unsigned",
        signature_status="valid",
        status=InboxStatus.RECEIVED,
        headers={},
        body=json_module.dumps(
            {"id": "evt_unsigned", "type": "payment.succeeded", "data": {"object": {}}}
        ),
    )
    with pytest.raises(WebhookSignatureInvalid):
        stored_event(row)


def test_an_event_of_the_platforms_billing_on_the_same_app_is_acknowledged_not_retried(
    client, pingxx_channel, pingxx_double
):
    """Creator billing shares the Ping++ app: an event about one of its charges names a
    row of another business domain. It is acknowledged and ignored, the row untouched."""
    _order, attempt = paid_order(pingxx_double)
    PingxxOrder._base_manager.filter(pk=attempt.pk).update(
        biz_domain="billing", bill_order_bid="bill-1", order_bid="", status=AttemptStatus.PENDING
    )
    before = PingxxOrder._base_manager.values().get(pk=attempt.pk)

    response = deliver(
        client, pingxx_double, pingxx_double.charge_succeeded_event(attempt.charge_id)
    )

    assert response.status_code == 200, response.content
    row = WebhookEvent.objects.latest("id")
    assert row.status == InboxStatus.IGNORED and "attempt_not_found" in row.last_error
    assert PingxxOrder._base_manager.values().get(pk=attempt.pk) == before
