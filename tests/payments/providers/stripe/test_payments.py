"""Starting and fetching payments: PaymentIntents and Checkout Sessions."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    CurrencyNotSupported,
    PaymentMethodInvalid,
    ProviderRequestRefused,
    RefundRequest,
)
from payments.providers.stripe import StripeProvider
from payments_project.money import to_minor
from tests.payments.providers.stripe.helpers import (
    CANCEL_URL,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    SUCCESS_URL,
    payment_request,
)

# ---- PaymentIntents ----


@pytest.mark.parametrize(
    ("major", "currency", "minor"),
    [("500", "JPY", 500), ("19.90", "USD", 1990), ("5.120", "kwd", 5120), ("19.90", "eur", 1990)],
)
def test_payment_intent_amount_in_minor_units(provider, fake, major, currency, minor):
    request = payment_request(amount=to_minor(Decimal(major), currency), currency=currency)
    start = provider.start_payment(request)

    (sent,) = fake.posts("/v1/payment_intents")
    assert sent["params"]["amount"] == str(minor)
    assert sent["params"]["currency"] == currency.lower()
    assert sent["params"]["payment_method_types"] == ["card"]
    assert sent["params"]["metadata"] == {
        "order_bid": request.order_bid,
        "attempt_bid": request.attempt_bid,
        "product_bid": request.product_bid,
    }
    assert "description" not in sent["params"]  # localstripe refuses it
    assert sent["idempotency_key"] == f"attempt-{request.attempt_bid}"
    assert sent["headers"]["authorization"] == f"Bearer {SECRET_KEY}"

    intent = fake.payment_intents[start.provider_payment_id]
    assert start.provider_payment_id.startswith("pi_")
    assert start.state == PAYMENT_PENDING
    assert start.client_data == {
        "client_secret": intent["client_secret"],
        "publishable_key": PUBLISHABLE_KEY,
        "payment_intent_id": intent["id"],
    }
    assert start.raw["id"] == intent["id"] and isinstance(start.raw, dict)
    json.dumps(start.raw)  # plain JSON, storable as is


def test_a_retried_create_sends_the_same_idempotency_key(provider, fake):
    fake.fail_next(500)
    request = payment_request()
    start = provider.start_payment(request)
    first, second = fake.posts("/v1/payment_intents")
    assert first["idempotency_key"] == second["idempotency_key"] == f"attempt-{request.attempt_bid}"
    assert list(fake.payment_intents) == [start.provider_payment_id]


def test_starting_the_same_attempt_again_gives_the_same_payment_intent(provider, fake):
    request = payment_request()
    first = provider.start_payment(request)
    again = provider.start_payment(request)
    assert again.provider_payment_id == first.provider_payment_id
    assert len(fake.payment_intents) == 1


@pytest.mark.parametrize("currency", ["isk", "ISK", "mga", "ugx", "xxx", ""])
def test_currencies_stripe_counts_differently_are_refused_before_any_call(provider, fake, currency):
    for method in provider.methods:
        with pytest.raises(CurrencyNotSupported) as caught:
            provider.start_payment(payment_request(method, currency=currency, amount=500))
        assert caught.value.channel == "stripe"
    with pytest.raises(CurrencyNotSupported):
        provider.refund(
            RefundRequest(
                channel="stripe",
                refund_bid="r1",
                provider_payment_id="pi_1",
                amount=500,
                currency=currency,
                reason="x",
            )
        )
    assert fake.requests == []


def test_three_decimal_amounts_must_end_in_zero(provider, fake):
    with pytest.raises(ProviderRequestRefused) as caught:
        provider.start_payment(payment_request(currency="kwd", amount=5125))
    assert caught.value.details["provider_code"] == "amount_not_multiple_of_ten"
    assert fake.requests == []
    provider.start_payment(payment_request(currency="kwd", amount=5130))
    assert len(fake.requests) == 1


def test_an_unknown_method_is_refused_before_any_call(provider, fake):
    with pytest.raises(PaymentMethodInvalid):
        provider.start_payment(payment_request("alipay_qr"))
    assert fake.requests == []


def test_without_a_secret_key_nothing_is_sent(stripe_settings, fake):
    stripe_settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(ProviderRequestRefused):
        StripeProvider().start_payment(payment_request())
    assert fake.requests == []


# ---- Checkout Sessions ----


def test_checkout_session(provider, fake):
    expires_at = timezone.now() + timedelta(minutes=45)
    request = payment_request(
        "checkout_session",
        amount=500,
        currency="JPY",
        success_url="https://shop.example.com/orders/1?paid=1",
        cancel_url="https://app.courses.example.org/orders/1",
        expires_at=expires_at,
    )
    start = provider.start_payment(request)

    (sent,) = fake.posts("/v1/checkout/sessions")
    params = sent["params"]
    metadata = {
        "order_bid": request.order_bid,
        "attempt_bid": request.attempt_bid,
        "product_bid": request.product_bid,
    }
    assert params["mode"] == "payment"
    assert params["line_items"] == [
        {
            "price_data": {
                "currency": "jpy",
                "unit_amount": "500",
                "product_data": {"name": "Python for beginners"},
            },
            "quantity": "1",
        }
    ]
    assert params["success_url"] == request.success_url
    assert params["cancel_url"] == request.cancel_url
    assert params["client_reference_id"] == request.order_bid
    assert params["metadata"] == metadata
    assert params["payment_intent_data"] == {"metadata": metadata}
    assert params["expires_at"] == str(int(expires_at.timestamp()))
    assert sent["idempotency_key"] == f"attempt-{request.attempt_bid}"

    session = fake.sessions[start.provider_payment_id]
    assert start.provider_payment_id.startswith("cs_")
    assert start.state == PAYMENT_PENDING
    assert start.client_data == {
        "checkout_url": session["url"],
        "checkout_session_id": session["id"],
    }


@pytest.mark.parametrize(
    ("ahead", "sent"),
    [
        (None, False),
        (timedelta(minutes=10), False),  # Stripe's minimum is 30 minutes
        (timedelta(minutes=31), False),  # too close to it to be sure
        (timedelta(minutes=40), True),
        (timedelta(hours=23), True),
        (timedelta(hours=25), False),  # Stripe's maximum is 24 hours
    ],
)
def test_checkout_expiry_only_within_what_stripe_accepts(provider, fake, ahead, sent):
    expires_at = None if ahead is None else timezone.now() + ahead
    provider.start_payment(payment_request("checkout_session", expires_at=expires_at))
    (request,) = fake.posts("/v1/checkout/sessions")
    assert ("expires_at" in request["params"]) is sent


def test_checkout_uses_the_configured_return_urls_by_default(provider, fake):
    provider.start_payment(payment_request("checkout_session"))
    (sent,) = fake.posts("/v1/checkout/sessions")
    assert sent["params"]["success_url"] == SUCCESS_URL
    assert sent["params"]["cancel_url"] == CANCEL_URL


def test_checkout_without_any_success_url_is_refused(provider, fake, stripe_settings):
    stripe_settings.STRIPE_CHECKOUT_SUCCESS_URL = ""
    with pytest.raises(PaymentMethodInvalid) as caught:
        provider.start_payment(payment_request("checkout_session"))
    assert caught.value.details["missing"] == "success_url"
    assert fake.requests == []


@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.net/paid",
        "https://shop.example.com.evil.example.net/paid",
        "http://shop.example.com/paid",  # DEBUG is off: https only
        "javascript:alert(1)//shop.example.com",
        "/orders/1",
        "//evil.example.net/paid",
        "https://courses.example.org.evil.net/",
        "ftp://shop.example.com/paid",
    ],
)
def test_return_urls_off_the_allowed_hosts_are_refused_before_any_call(provider, fake, field, url):
    with pytest.raises(PaymentMethodInvalid) as caught:
        provider.start_payment(payment_request("checkout_session", **{field: url}))
    assert caught.value.details["invalid"] == field
    assert fake.requests == []


def test_plain_http_return_urls_are_allowed_with_debug_on(provider, fake, stripe_settings):
    stripe_settings.DEBUG = True
    provider.start_payment(
        payment_request("checkout_session", success_url="http://shop.example.com:8000/paid")
    )
    (sent,) = fake.posts("/v1/checkout/sessions")
    assert sent["params"]["success_url"] == "http://shop.example.com:8000/paid"


# ---- fetching payments ----


def test_fetch_a_payment_intent_before_and_after_paying(provider, fake):
    request = payment_request()
    intent_id = provider.start_payment(request).provider_payment_id
    before = provider.fetch_payment(intent_id)
    assert (before.state, before.amount, before.currency) == (PAYMENT_PENDING, 1990, "usd")
    assert before.attempt_bid == request.attempt_bid
    assert before.order_bid == request.order_bid
    assert before.livemode is False and before.paid_at is None

    fake.succeed(intent_id)
    after = provider.fetch_payment(intent_id)
    charge_id = fake.payment_intents[intent_id]["latest_charge"]
    assert (after.state, after.amount, after.currency) == (PAYMENT_SUCCEEDED, 1990, "usd")
    assert after.transaction_no == charge_id
    assert after.paid_at is not None
    assert after.raw["latest_charge"]["receipt_url"].startswith("https://pay.stripe.com/")
    assert fake.requests[-1]["method"] == "GET"
    assert fake.requests[-1]["params"]["expand"] == ["latest_charge"]


def test_fetch_a_declined_payment_intent(provider, fake):
    intent_id = provider.start_payment(payment_request()).provider_payment_id
    fake.decline(intent_id, "insufficient_funds")
    state = provider.fetch_payment(intent_id)
    assert state.state == PAYMENT_FAILED
    assert state.failure_code == "insufficient_funds"
    assert state.failure_message == "Your card has insufficient funds."


def test_fetch_a_canceled_payment_intent(provider, fake):
    intent_id = provider.start_payment(payment_request()).provider_payment_id
    fake.payment_intents[intent_id]["status"] = "canceled"
    assert provider.fetch_payment(intent_id).state == PAYMENT_CLOSED


def test_fetch_a_checkout_session(provider, fake):
    request = payment_request("checkout_session")
    session_id = provider.start_payment(request).provider_payment_id
    open_state = provider.fetch_payment(session_id)
    assert (open_state.state, open_state.amount, open_state.currency) == (
        PAYMENT_PENDING,
        1990,
        "usd",
    )
    assert open_state.attempt_bid == request.attempt_bid

    fake.complete_session(session_id)
    paid = provider.fetch_payment(session_id)
    assert paid.state == PAYMENT_SUCCEEDED and paid.provider_payment_id == session_id
    intent = paid.raw["payment_intent"]
    assert intent["metadata"]["attempt_bid"] == request.attempt_bid
    assert paid.transaction_no == intent["latest_charge"]["id"]
    assert fake.requests[-1]["params"]["expand"] == [
        "payment_intent",
        "payment_intent.latest_charge",
    ]


def test_fetch_a_checkout_session_awaiting_an_asynchronous_payment(provider, fake):
    session_id = provider.start_payment(payment_request("checkout_session")).provider_payment_id
    fake.complete_session(session_id, paid=False)
    assert provider.fetch_payment(session_id).state == PAYMENT_PENDING
    fake.decline(fake.sessions[session_id]["payment_intent"])
    failed = provider.fetch_payment(session_id)
    assert failed.state == PAYMENT_FAILED and failed.failure_code == "insufficient_funds"
    fake.sessions[session_id]["status"] = "expired"
    assert provider.fetch_payment(session_id).state == PAYMENT_CLOSED


def test_fetch_an_unknown_payment_is_refused(provider, fake):
    with pytest.raises(ProviderRequestRefused) as caught:
        provider.fetch_payment("pi_3DoesNotExist")
    assert caught.value.details["provider_code"] == "resource_missing"
