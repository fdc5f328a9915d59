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
from payments.services import webhook_receive
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
    outcome = webhook_receive(channel="stripe", **dict(zip(("body", "headers"), signed_event(
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
    outcome = webhook_receive(channel="stripe", body=body, headers=headers)
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
