"""Ping++ end to end: services, the real SDK against the double, the webhook endpoint."""

import json
from decimal import Decimal

import pytest

from orders import services
from orders.models import OrderEvent, OrderStatus, Refund, RefundStatus
from payments.models import AttemptStatus, InboxStatus, PingxxOrder, SignatureStatus, WebhookEvent
from payments.providers.base import ProviderUnavailable
from tests.factories import ProductFactory
from tests.threads import run_together

URL = "/webhooks/pingxx/"


def deliver(client, double, event, *, key=None, signature=None, body=None):
    signed_body, signed = double.sign_event(event, key=key)
    return client.post(
        URL,
        body if body is not None else signed_body,
        content_type="application/json",
        headers={"x-pingplusplus-signature": signature if signature is not None else signed},
    )


def unpaid_order(price="19.90"):
    product = ProductFactory(price=Decimal(price), currency="cny")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(order=order, method="alipay_qr")
    return order, PingxxOrder.objects.get(transaction_no=started.attempt.attempt_bid), started


@pytest.mark.django_db
def test_pay_through_pingxx_and_refund_in_two_parts(client, pingxx_channel, pingxx_double):
    order, attempt, started = unpaid_order()
    assert started.client_data["qr_url"].startswith("https://qr.alipay.com/")
    charge = pingxx_double.charges[attempt.charge_id]
    assert (charge["amount"], charge["order_no"]) == (1990, attempt.attempt_bid)
    assert attempt.pingxx_order_bid == attempt.transaction_no == attempt.attempt_bid
    assert json.loads(attempt.charge_object)["id"] == attempt.charge_id

    pingxx_double.pay(attempt.charge_id)
    response = deliver(
        client, pingxx_double, pingxx_double.charge_succeeded_event(attempt.charge_id)
    )
    assert response.status_code == 200, response.content
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("19.90")
    assert attempt.status == AttemptStatus.PAID

    pingxx_double.refund_status = "pending"
    first = services.refund_request(order=order, amount=Decimal("9.90"), reason="partial")
    assert first.status == RefundStatus.PENDING and first.provider_refund_id
    pingxx_double.settle_refund(first.provider_refund_id)
    response = deliver(
        client, pingxx_double, pingxx_double.refund_succeeded_event(first.provider_refund_id)
    )
    assert response.status_code == 200, response.content
    first.refresh_from_db()
    order.refresh_from_db()
    assert first.status == RefundStatus.SUCCEEDED
    assert order.status == OrderStatus.PAID and order.refunded_price == Decimal("9.90")

    pingxx_double.refund_status = "succeeded"
    rest = services.refund_request(order=order, reason="the rest")
    assert rest.amount == Decimal("10.00") and rest.status == RefundStatus.SUCCEEDED
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and attempt.status == AttemptStatus.REFUNDED

    # The repeated refund event and a late charge event change nothing.
    again = deliver(
        client, pingxx_double, pingxx_double.refund_succeeded_event(rest.provider_refund_id)
    )
    late = deliver(client, pingxx_double, pingxx_double.charge_succeeded_event(attempt.charge_id))
    assert again.status_code == 200 and late.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and order.refunded_price == Decimal("19.90")


@pytest.mark.django_db
def test_a_refund_whose_answer_was_lost_is_found_not_repeated(pingxx_channel, pingxx_double):
    order, attempt, _ = unpaid_order("10.00")
    pingxx_double.pay(attempt.charge_id)
    services.payment_sync(order=order)
    pingxx_double.fail_next(502)  # the refund is not made; the answer is a gateway error
    with pytest.raises(ProviderUnavailable):
        services.refund_request(order=order, reason="customer asked")
    refund = Refund.objects.get(order=order)
    assert refund.status == RefundStatus.PENDING

    long_ago = refund.created_at.replace(year=2020)
    Refund.objects.filter(pk=refund.pk).update(created_at=long_ago, submitted_at=long_ago)
    report = services.payments_reconcile(older_than_seconds=60)
    assert report.errors == [] and report.settled == 1
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert len(pingxx_double.refunds) == 1
    services.refund_submit(refund=refund, provider_payment_id=attempt.charge_id, retry=True)
    assert len(pingxx_double.refunds) == 1  # found by refund_bid, not made again


@pytest.mark.django_db
def test_reconciliation_finds_a_payment_ping_never_reported(pingxx_channel, pingxx_double):
    order, attempt, _ = unpaid_order()
    pingxx_double.pay(attempt.charge_id)
    PingxxOrder.objects.filter(pk=attempt.pk).update(
        created_at=attempt.created_at.replace(year=2020)
    )
    report = services.payments_reconcile(older_than_seconds=60)
    assert (report.checked, report.settled, report.errors) == (1, 1, [])
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


# ---- bad input at the webhook endpoint: refused, recorded, nothing applied ----


@pytest.fixture
def paid_charge(db, pingxx_channel, pingxx_double):
    order, attempt, _ = unpaid_order()
    pingxx_double.pay(attempt.charge_id)
    return order, attempt


def assert_nothing_applied(order):
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID
    assert not OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).exists()


def only_inbox_row():
    (row,) = WebhookEvent.objects.filter(channel="pingxx")
    return row


@pytest.mark.django_db
def test_missing_signature(client, paid_charge, pingxx_double):
    order, attempt = paid_charge
    response = deliver(
        client, pingxx_double, pingxx_double.charge_succeeded_event(attempt.charge_id), signature=""
    )
    assert response.status_code == 401
    assert response.json()["code"] == "webhook_signature_invalid"
    row = only_inbox_row()
    assert (row.status, row.signature_status, row.event_id) == (
        InboxStatus.REJECTED,
        SignatureStatus.MISSING,
        None,
    )
    assert_nothing_applied(order)


@pytest.mark.django_db
def test_forged_signature(client, paid_charge, pingxx_double, pingxx_keys):
    order, attempt = paid_charge
    event = pingxx_double.charge_succeeded_event(attempt.charge_id)
    response = deliver(client, pingxx_double, event, key=pingxx_keys.stranger)
    assert response.status_code == 401
    row = only_inbox_row()
    assert row.signature_status == SignatureStatus.INVALID and row.event_id is None
    assert_nothing_applied(order)
    # The genuine event with the same id still applies: a forgery cannot take its place.
    assert deliver(client, pingxx_double, event).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


@pytest.mark.django_db
def test_signature_of_another_body(client, paid_charge, pingxx_double):
    order, attempt = paid_charge
    event = pingxx_double.charge_succeeded_event(attempt.charge_id)
    _, signature = pingxx_double.sign_event(event)
    tampered = dict(event, data={"object": {**event["data"]["object"], "amount": 1}})
    response = deliver(
        client, pingxx_double, event, body=json.dumps(tampered).encode(), signature=signature
    )
    assert response.status_code == 401
    assert_nothing_applied(order)


@pytest.mark.django_db
def test_malformed_json_is_refused(client, paid_charge, pingxx_double):
    order, _ = paid_charge
    body = b'{"id": "evt_1", "type": "charge.succeeded", '
    headers = {"x-pingplusplus-signature": pingxx_double.sign(body)}
    response = client.post(URL, body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert only_inbox_row().status == InboxStatus.REJECTED
    assert_nothing_applied(order)


@pytest.mark.django_db
def test_body_over_the_limit_is_refused_unread(client, paid_charge, settings):
    order, _ = paid_charge
    body = b"{" + b" " * settings.WEBHOOK_MAX_BODY_BYTES + b"}"
    response = client.post(URL, body, content_type="application/json")
    assert response.status_code == 413
    row = only_inbox_row()
    assert row.status == InboxStatus.REJECTED and row.body == ""
    assert "webhook_body_too_large" in row.last_error
    assert_nothing_applied(order)


@pytest.mark.django_db
def test_unknown_event_type_is_acknowledged_and_ignored(client, paid_charge, pingxx_double):
    order, _ = paid_charge
    event = pingxx_double.event("summary.daily.available", {"object": "summary"})
    response = deliver(client, pingxx_double, event)
    assert response.status_code == 200
    assert only_inbox_row().status == InboxStatus.IGNORED
    assert_nothing_applied(order)


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), [("amount", 1), ("currency", "usd")])
def test_amount_or_currency_mismatch_is_refused_and_recorded(
    client, paid_charge, pingxx_double, field, value
):
    order, attempt = paid_charge
    event = pingxx_double.charge_succeeded_event(attempt.charge_id)
    event["data"]["object"][field] = value
    response = deliver(client, pingxx_double, event)
    assert response.status_code == 400
    assert response.json()["code"] == "amount_mismatch"
    row = only_inbox_row()
    assert row.status == InboxStatus.REJECTED and "amount_mismatch" in row.last_error
    assert_nothing_applied(order)
    assert OrderEvent.objects.filter(order=order, message__startswith="refused").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "code"), [
    ("app", "app_someone_else", "webhook_app_mismatch"),
    ("livemode", True, "webhook_livemode_mismatch"),
])  # fmt: skip
def test_other_app_or_mode_is_refused(client, paid_charge, pingxx_double, field, value, code):
    order, attempt = paid_charge
    event = pingxx_double.charge_succeeded_event(attempt.charge_id)
    event["data"]["object"][field] = value
    if field == "livemode":
        event["livemode"] = value
    response = deliver(client, pingxx_double, event)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert only_inbox_row().status == InboxStatus.REJECTED
    assert_nothing_applied(order)


@pytest.mark.django_db
def test_unknown_charge_is_kept_and_answered_5xx_for_a_retry(client, pingxx_channel, pingxx_double):
    _, attempt, _ = unpaid_order()
    pingxx_double.pay(attempt.charge_id)
    event = pingxx_double.charge_succeeded_event(attempt.charge_id)
    event["data"]["object"]["id"] = "ch_unknown000000000000000"
    event["data"]["object"]["order_no"] = "not-ours"
    response = deliver(client, pingxx_double, event)
    assert response.status_code == 503
    row = only_inbox_row()
    assert row.status == InboxStatus.FAILED and row.event_id == event["id"]
    retry = deliver(client, pingxx_double, event)
    assert retry.status_code == 503
    assert WebhookEvent.objects.get().attempts == 2


@pytest.mark.django_db
def test_without_a_public_key_every_delivery_is_refused(
    client, paid_charge, pingxx_double, settings
):
    order, attempt = paid_charge
    settings.PINGXX_WEBHOOK_PUBLIC_KEY = ""
    response = deliver(
        client, pingxx_double, pingxx_double.charge_succeeded_event(attempt.charge_id)
    )
    assert response.status_code == 503
    assert response.json()["code"] == "webhook_not_configured"
    assert_nothing_applied(order)


# ---- real threads on MariaDB ----


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_pingxx_refunds_never_exceed_what_was_paid(pingxx_channel, pingxx_double):
    order, attempt, _ = unpaid_order("19.90")
    pingxx_double.pay(attempt.charge_id)
    services.payment_sync(order=order)
    results = run_together(
        lambda i: services.refund_request(order=order, amount=Decimal("5.00"), reason=f"r{i}")
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert {type(r).__name__ for r in refused} == {"RefundExceedsRefundable"}
    assert len(refused) == 17
    order.refresh_from_db()
    assert order.refunded_price == Decimal("15.00")
    assert sum(r["amount"] for r in pingxx_double.refunds.values()) == 1500


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_pingxx_deliveries_apply_once(client, pingxx_channel, pingxx_double):
    from django.test import Client

    order, attempt, _ = unpaid_order()
    pingxx_double.pay(attempt.charge_id)
    body, signature = pingxx_double.sign_event(
        pingxx_double.charge_succeeded_event(attempt.charge_id)
    )
    results = run_together(
        lambda i: Client().post(URL, body, content_type="application/json",
                                headers={"x-pingplusplus-signature": signature}).status_code
    )  # fmt: skip
    assert results == [200] * 20
    assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).count() == 1
    assert WebhookEvent.objects.get().status == InboxStatus.APPLIED


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_refund_succeeded_before_charge_succeeded_converges(client, pingxx_channel, pingxx_double):
    order, attempt, _ = unpaid_order("10.00")
    pingxx_double.pay(attempt.charge_id)
    # A refund made on Ping++'s dashboard; its event outruns the charge's.
    refund = pingxx_double._create_refund(
        pingxx_double.charges[attempt.charge_id], {"amount": 1000}
    )
    refund_event = pingxx_double.refund_succeeded_event(refund["id"])
    charge_event = pingxx_double.charge_succeeded_event(attempt.charge_id)

    assert deliver(client, pingxx_double, refund_event).status_code == 503
    assert deliver(client, pingxx_double, charge_event).status_code == 200
    assert deliver(client, pingxx_double, refund_event).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and order.refunded_price == Decimal("10.00")
