"""The stripe channel through the services."""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal

import pytest

from orders import services
from orders.models import OrderStatus, RefundStatus
from payments import registry
from payments.models import AttemptStatus
from payments.tasks import webhook_deliver
from tests.factories import ProductFactory
from tests.payments.providers.stripe.helpers import signed


@pytest.fixture
def channel(stripe_settings):
    stripe_settings.PAYMENT_CHANNELS_ENABLED = ["stripe"]
    stripe_settings.DEFAULT_PAYMENT_CHANNEL = "stripe"
    return stripe_settings


def signed_event(event_type: str, obj: dict) -> tuple[bytes, dict]:
    body = json.dumps(
        {
            "id": "evt_" + os.urandom(12).hex(),
            "object": "event",
            "api_version": "2026-05-27.dahlia",
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
    ).encode()
    return body, signed(body)


@pytest.mark.django_db
def test_pay_and_refund_through_the_services(channel, fake):
    product = ProductFactory(price=Decimal("500"), currency="jpy")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    attempt = started.attempt
    intent = fake.payment_intents[attempt.payment_intent_id]
    assert (intent["amount"], intent["currency"]) == (500, "jpy")
    assert started.client_data["client_secret"] == intent["client_secret"]

    fake.succeed(intent["id"])
    provider = registry.get_provider("stripe")
    paid = provider.fetch_payment(intent["id"]).raw
    outcome = webhook_deliver(channel="stripe", **dict(zip(("body", "headers"), signed_event(
        "payment_intent.succeeded", paid
    ), strict=True)))  # fmt: skip
    assert outcome.http_status == 200, outcome.message
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("500")
    assert attempt.status == AttemptStatus.PAID
    assert attempt.receipt_url.startswith("https://pay.stripe.com/")

    refund = services.refund_request(order=order, amount=Decimal("200"), reason="partial")
    assert refund.status == RefundStatus.SUCCEEDED
    (sent,) = fake.posts("/v1/refunds")
    assert sent["params"]["amount"] == "200"
    assert sent["idempotency_key"] == f"refund-{refund.refund_bid}"


@pytest.mark.django_db
def test_checkout_through_the_services(channel, fake):
    product = ProductFactory(price=Decimal("19.90"), currency="usd")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(
        order=order, method="checkout_session", success_url="https://shop.example.com/ok"
    )
    attempt = started.attempt
    assert started.client_data["checkout_url"].startswith("https://checkout.stripe.com/")
    session = fake.complete_session(attempt.checkout_session_id)

    body, headers = signed_event("checkout.session.completed", session)
    outcome = webhook_deliver(channel="stripe", body=body, headers=headers)
    assert outcome.http_status == 200, outcome.message
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert attempt.status == AttemptStatus.PAID
    assert attempt.payment_intent_id == session["payment_intent"]
    assert attempt.provider_payment_id == session["payment_intent"]

    refund = services.refund_request(order=order, reason="all of it")
    assert refund.status == RefundStatus.SUCCEEDED
    (sent,) = fake.posts("/v1/refunds")
    assert sent["params"]["payment_intent"] == session["payment_intent"]
    assert sent["params"]["amount"] == "1990"


@pytest.mark.django_db
def test_with_a_broker_the_request_only_stores_and_a_worker_applies_then_syncs(
    channel, fake, queued, django_capture_on_commit_callbacks, monkeypatch
):
    """No Stripe call in the request: the event is stored (without its client secret)
    and acknowledged; the task applies it, then dj-stripe's sync, retried if Stripe
    fails, and its last failure kept on the inbox row."""
    from celery.exceptions import Retry
    from djstripe.models import Event

    from payments import tasks
    from payments.models import InboxStatus, WebhookEvent

    product = ProductFactory(price=Decimal("500"), currency="jpy")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    intent = fake.payment_intents[services.payment_start(order=order).attempt.payment_intent_id]
    fake.succeed(intent["id"])
    paid = registry.get_provider("stripe").fetch_payment(intent["id"]).raw
    body, headers = signed_event("payment_intent.succeeded", paid)
    calls_before = len(fake.requests)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = webhook_deliver(channel="stripe", body=body, headers=headers)
    assert (outcome.http_status, outcome.code) == (200, "received")
    assert len(fake.requests) == calls_before
    row = WebhookEvent.objects.get()
    assert row.status == InboxStatus.RECEIVED and queued["apply"] == [row.pk]
    assert intent["client_secret"] not in row.body + json.dumps(row.payload)

    assert tasks.apply_webhook_event(row.pk) == "applied"
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and queued["sync"] == [row.pk]

    synced = []
    monkeypatch.setattr(Event, "process", lambda data, api_key: synced.append(data["id"]))
    tasks.sync_stripe_event.run(row.pk)
    assert synced == [row.event_id]

    def stripe_down(data, api_key):
        raise RuntimeError("Stripe answered 503")

    monkeypatch.setattr(Event, "process", stripe_down)
    task = tasks.sync_stripe_event
    monkeypatch.setattr(task, "retry", lambda **options: Retry())
    for retries, retried in ((0, True), (task.max_retries, False)):
        task.push_request(retries=retries, is_eager=False, called_directly=False)
        try:
            if retried:
                with pytest.raises(Retry):
                    task.run(row.pk)
            else:
                task.run(row.pk)
        finally:
            task.pop_request()
    row.refresh_from_db()
    assert row.status == InboxStatus.APPLIED
    assert row.last_error == "dj-stripe sync: RuntimeError: Stripe answered 503"


@pytest.mark.django_db
def test_a_signed_event_refused_for_its_content_is_acknowledged_without_its_body(channel, fake):
    """Stripe would retry a 4xx for days and then disable the endpoint: a signed event
    refused for what it says (here, a live event at a test configuration) is recorded
    and answered 200, keeping its digest and size but never its body, which may carry a
    client secret."""
    from payments.models import InboxStatus, WebhookEvent

    product = ProductFactory(price=Decimal("500"), currency="jpy")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    intent = fake.payment_intents[services.payment_start(order=order).attempt.payment_intent_id]
    fake.succeed(intent["id"])
    obj = registry.get_provider("stripe").fetch_payment(intent["id"]).raw
    assert obj["client_secret"]
    body, headers = signed_event("payment_intent.succeeded", obj)
    body = body.replace(b'"livemode": false', b'"livemode": true')
    headers = signed(body)
    outcome = webhook_deliver(channel="stripe", body=body, headers=headers)
    assert (outcome.http_status, outcome.code) == (200, "webhook_livemode_mismatch")
    row = WebhookEvent.objects.get()
    assert row.status == InboxStatus.REJECTED and row.event_id is None
    assert row.body == "" and row.body_bytes == len(body) and row.digest
    assert obj["client_secret"] not in json.dumps(row.headers) + row.last_error
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID
