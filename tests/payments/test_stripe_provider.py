"""The Stripe provider, through the real stripe SDK, against a loopback fake of Stripe's API,
and its reading of recorded Stripe events."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import stripe
from django.utils import timezone

from orders import services
from orders.models import OrderStatus, RefundStatus
from payments import registry
from payments.models import AttemptStatus, StripeOrder
from payments.providers import stripe as stripe_module
from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    EVENT_REFUND,
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    CurrencyNotSupported,
    PaymentMethodInvalid,
    PaymentProvider,
    PaymentRequest,
    PaymentState,
    ProviderBadResponse,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundRequest,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from payments.providers.stripe import StripeProvider
from payments.services import webhook_receive
from payments_project.money import to_minor
from tests.factories import ProductFactory, StripeOrderFactory
from tests.payments.stripe_fakes import FakeStripe, StripeFakeError

SECRET_KEY = "sk_test_" + "FakeStripeSecretKey0000000000"
PUBLISHABLE_KEY = "pk_test_" + "FakeStripePublishableKey0000"
WEBHOOK_SECRET = "whsec_" + "FakeStripeWebhookSecret00000"
PAYLOADS = Path(__file__).parent / "stripe_payloads"
SUCCESS_URL = "https://shop.example.com/paid?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example.com/cancelled"


@pytest.fixture(autouse=True)
def _no_retry_sleep(monkeypatch):
    """The SDK's back-off between retries, without the waiting."""
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0)


@pytest.fixture
def fake():
    with FakeStripe(secret_key=SECRET_KEY) as fake:
        yield fake


@pytest.fixture
def stripe_settings(settings, fake):
    settings.STRIPE_API_BASE = fake.base_url
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_CHECKOUT_SUCCESS_URL = SUCCESS_URL
    settings.STRIPE_CHECKOUT_CANCEL_URL = CANCEL_URL
    settings.ALLOWED_HOSTS = ["shop.example.com", ".courses.example.org", "*"]
    settings.DEBUG = False
    return settings


@pytest.fixture
def provider(stripe_settings) -> StripeProvider:
    return StripeProvider()


def payment_request(method: str = "payment_intent", **overrides) -> PaymentRequest:
    values = {
        "channel": "stripe",
        "method": method,
        "order_bid": "0123456789abcdef0123456789abcdef",
        "attempt_bid": os.urandom(16).hex(),
        "user_bid": "user0123456789abcdef0123456789ab",
        "product_bid": "prod0123456789abcdef0123456789ab",
        "amount": 1990,
        "currency": "usd",
        "subject": "Python for beginners",
        "body": "Python for beginners (0123456789abcdef0123456789abcdef)",
        "metadata": {"order_bid": "0123456789abcdef0123456789abcdef"},
    }
    return PaymentRequest(**{**values, **overrides})


def refund_request(payment_id: str, refund_bid: str = "", amount: int = 500) -> RefundRequest:
    return RefundRequest(
        channel="stripe",
        refund_bid=refund_bid or os.urandom(16).hex(),
        provider_payment_id=payment_id,
        amount=amount,
        currency="usd",
        reason="not what I expected",
    )


def paid_intent(provider, fake, **overrides) -> str:
    intent_id = provider.start_payment(payment_request(**overrides)).provider_payment_id
    fake.succeed(intent_id)
    return intent_id


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def signed(body: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict:
    timestamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {"Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- configuration ----


def test_provider_implements_the_protocol(provider):
    assert isinstance(provider, PaymentProvider)
    assert provider.channel == "stripe"
    assert provider.methods == ("payment_intent", "checkout_session")
    assert provider.default_method == "payment_intent"
    assert provider.attempt_model is StripeOrder
    assert provider.app_id == ""
    assert provider.livemode is False
    assert {"usd", "jpy", "eur", "kwd", "cny", "huf", "twd"} <= provider.currencies
    assert not {"isk", "mga", "ugx"} & provider.currencies


@pytest.mark.parametrize(
    ("key", "live"),
    [
        ("sk_live_" + "0" * 24, True),
        ("rk_live_" + "0" * 24, True),
        ("sk_test_" + "0" * 24, False),
        ("rk_test_" + "0" * 24, False),
    ],
)
def test_livemode_follows_the_secret_key(stripe_settings, key, live):
    stripe_settings.STRIPE_SECRET_KEY = key
    assert StripeProvider().livemode is live


def test_client_has_timeouts_retries_and_the_configured_base(provider, fake):
    requestor = provider.client._requestor
    assert isinstance(requestor._client, stripe.RequestsClient)
    assert requestor._client._timeout == (5.0, 25.0)
    assert requestor._options.max_network_retries == 2
    assert requestor._options.base_addresses["api"] == fake.base_url
    assert requestor._options.api_key == SECRET_KEY


def test_the_read_timeout_really_applies(stripe_settings, fake, monkeypatch):
    monkeypatch.setattr(StripeProvider, "read_timeout", 0.3)
    monkeypatch.setattr(StripeProvider, "max_network_retries", 0)
    provider = StripeProvider()
    fake.delay_next(2)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        provider.start_payment(payment_request())
    assert time.monotonic() - started < 1.5


def test_registry_rebuilds_the_provider_when_settings_change(stripe_settings):
    first = registry.get_provider_any("stripe")
    assert isinstance(first, StripeProvider)
    assert registry.get_provider_any("stripe") is first
    stripe_settings.STRIPE_API_BASE = "http://127.0.0.1:9/"
    second = registry.get_provider_any("stripe")
    assert second is not first
    assert second.client._requestor._options.base_addresses["api"] == "http://127.0.0.1:9"


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


# ---- errors ----


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_unavailable_after_the_retries(provider, fake, status):
    fake.fail_next(status, times=3)
    with pytest.raises(ProviderUnavailable) as caught:
        provider.start_payment(payment_request())
    assert caught.value.details["http_status"] == status
    keys = {request["idempotency_key"] for request in fake.posts("/v1/payment_intents")}
    assert len(fake.posts("/v1/payment_intents")) == 3 and len(keys) == 1


def test_a_closed_port_is_unavailable(stripe_settings):
    stripe_settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ProviderUnavailable) as caught:
        StripeProvider().start_payment(payment_request())
    assert caught.value.channel == "stripe"


def test_rate_limiting_is_unavailable(provider, fake):
    fake.fail_next(
        429,
        body=json.dumps(
            {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Slow"}}
        ).encode(),
    )
    with pytest.raises(ProviderUnavailable):
        provider.start_payment(payment_request())


def test_a_bad_request_is_refused_with_stripes_code(provider, fake):
    fake.fail_next(
        400,
        body=json.dumps(
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "amount_too_small",
                    "param": "amount",
                    "message": "Amount must be at least $0.50 usd",
                }
            }
        ).encode(),
    )
    with pytest.raises(ProviderRequestRefused) as caught:
        provider.start_payment(payment_request(amount=10))
    error = caught.value
    assert error.channel == "stripe" and error.code == "provider_refused"
    assert error.details["provider_code"] == "amount_too_small"
    assert error.details["param"] == "amount"
    assert error.details["http_status"] == 400
    assert "at least $0.50" in error.message
    assert len(fake.requests) == 1  # a 400 is not retried


def test_a_card_error_is_refused_with_its_decline_code(provider, fake):
    fake.fail_next(
        402,
        body=json.dumps(
            {
                "error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                }
            }
        ).encode(),
    )
    with pytest.raises(ProviderRequestRefused) as caught:
        provider.start_payment(payment_request())
    assert caught.value.code == "provider_refused"
    assert caught.value.details["provider_code"] == "card_declined"
    assert caught.value.details["decline_code"] == "insufficient_funds"


def test_an_idempotency_conflict_may_yet_succeed_so_it_is_not_a_refusal(provider, fake):
    # The request already running with this key may still go through: a refund must
    # stay pending (to be looked up), never be marked failed and made again.
    fake.fail_next(
        400,
        body=json.dumps(
            {"error": {"type": "idempotency_error", "message": "Keys reused with other params"}}
        ).encode(),
    )
    with pytest.raises(ProviderUnavailable) as caught:
        provider.start_payment(payment_request())
    assert caught.value.details["provider_error_type"] == "idempotency_error"


def test_a_wrong_secret_key_is_refused(stripe_settings, fake):
    stripe_settings.STRIPE_SECRET_KEY = "sk_test_" + "Wrong" * 6
    with pytest.raises(ProviderRequestRefused) as caught:
        StripeProvider().start_payment(payment_request())
    assert caught.value.details["http_status"] == 401


@pytest.mark.parametrize(
    "body", [b"<html>not json</html>", b"[1, 2]", b'{"object": "payment_intent"}']
)
def test_unreadable_answers_are_bad_responses(provider, fake, body):
    fake.fail_next(200, body=body)
    with pytest.raises(ProviderBadResponse):
        provider.start_payment(payment_request())


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


# ---- closing payments ----


def started_attempt(provider, method: str = "payment_intent") -> StripeOrder:
    """An attempt row as the services hold it after starting (not saved: close_payment
    must not need the database)."""
    request = payment_request(method)
    attempt = provider.build_attempt(request)
    provider.apply_start(attempt, provider.start_payment(request))
    return attempt


def after_looking(monkeypatch, service, then) -> None:
    """``then()`` runs right after the provider's next retrieve through ``service``: what
    happens at Stripe between its look and its close."""
    retrieve = service.retrieve

    def retrieve_then(*args, **kwargs):
        monkeypatch.setattr(service, "retrieve", retrieve)
        found = retrieve(*args, **kwargs)
        then()
        return found

    monkeypatch.setattr(service, "retrieve", retrieve_then)


def test_close_cancels_a_pending_payment_intent(provider, fake):
    attempt = started_attempt(provider)
    intent_id = attempt.payment_intent_id

    state = provider.close_payment(attempt)

    assert (state.state, state.provider_payment_id) == (PAYMENT_CLOSED, intent_id)
    assert (state.amount, state.currency, state.attempt_bid) == (1990, "usd", attempt.attempt_bid)
    assert fake.payment_intents[intent_id]["status"] == "canceled"
    (cancel,) = fake.posts(f"/v1/payment_intents/{intent_id}/cancel")
    assert not (cancel["idempotency_key"] or "").startswith("close-")  # no replayable key
    assert attempt.pk is None and attempt.status == AttemptStatus.PENDING


def test_close_cancels_a_declined_payment_intent(provider, fake):
    attempt = started_attempt(provider)
    fake.decline(attempt.payment_intent_id)
    assert provider.close_payment(attempt).state == PAYMENT_CLOSED
    assert fake.payment_intents[attempt.payment_intent_id]["status"] == "canceled"


def test_close_expires_an_open_checkout_session(provider, fake):
    attempt = started_attempt(provider, "checkout_session")
    session_id = attempt.checkout_session_id

    state = provider.close_payment(attempt)

    assert (state.state, state.provider_payment_id) == (PAYMENT_CLOSED, session_id)
    assert fake.sessions[session_id]["status"] == "expired"
    (expire,) = fake.posts(f"/v1/checkout/sessions/{session_id}/expire")
    assert not (expire["idempotency_key"] or "").startswith("close-")


def test_close_of_a_paid_payment_intent_reports_the_payment(provider, fake):
    attempt = started_attempt(provider)
    fake.succeed(attempt.payment_intent_id)

    state = provider.close_payment(attempt)

    intent = fake.payment_intents[attempt.payment_intent_id]
    assert (state.state, state.amount, state.currency) == (PAYMENT_SUCCEEDED, 1990, "usd")
    assert state.transaction_no == intent["latest_charge"] and state.paid_at is not None
    assert intent["status"] == "succeeded"
    assert fake.posts(f"/v1/payment_intents/{attempt.payment_intent_id}/cancel") == []


def test_close_of_a_paid_checkout_session_reports_the_payment(provider, fake):
    attempt = started_attempt(provider, "checkout_session")
    fake.complete_session(attempt.checkout_session_id)

    state = provider.close_payment(attempt)

    assert (state.state, state.amount, state.provider_payment_id) == (
        PAYMENT_SUCCEEDED,
        1990,
        attempt.checkout_session_id,
    )
    assert fake.posts(f"/v1/checkout/sessions/{attempt.checkout_session_id}/expire") == []


def test_a_payment_intent_paid_between_the_look_and_the_cancel_is_succeeded(
    provider, fake, monkeypatch
):
    attempt = started_attempt(provider)
    intent_id = attempt.payment_intent_id
    after_looking(monkeypatch, provider.client.v1.payment_intents, lambda: fake.succeed(intent_id))

    state = provider.close_payment(attempt)

    assert (state.state, state.amount) == (PAYMENT_SUCCEEDED, 1990)
    assert len(fake.posts(f"/v1/payment_intents/{intent_id}/cancel")) == 1  # refused
    assert fake.payment_intents[intent_id]["status"] == "succeeded"


def test_a_session_completed_between_the_look_and_the_expiry_is_succeeded(
    provider, fake, monkeypatch
):
    attempt = started_attempt(provider, "checkout_session")
    session_id = attempt.checkout_session_id
    after_looking(
        monkeypatch, provider.client.v1.checkout.sessions, lambda: fake.complete_session(session_id)
    )

    state = provider.close_payment(attempt)

    assert (state.state, state.amount) == (PAYMENT_SUCCEEDED, 1990)
    assert len(fake.posts(f"/v1/checkout/sessions/{session_id}/expire")) == 1  # refused
    assert fake.sessions[session_id]["status"] == "complete"


def test_closing_again_or_what_stripe_closed_is_closed_without_a_call(provider, fake):
    attempt = started_attempt(provider)
    assert provider.close_payment(attempt).state == PAYMENT_CLOSED
    assert provider.close_payment(attempt).state == PAYMENT_CLOSED
    assert len(fake.posts(f"/v1/payment_intents/{attempt.payment_intent_id}/cancel")) == 1

    session_attempt = started_attempt(provider, "checkout_session")
    fake.sessions[session_attempt.checkout_session_id]["status"] = "expired"
    assert provider.close_payment(session_attempt).state == PAYMENT_CLOSED
    assert fake.posts(f"/v1/checkout/sessions/{session_attempt.checkout_session_id}/expire") == []


def test_a_processing_payment_intent_is_not_cancelled_and_stays_pending(provider, fake):
    attempt = started_attempt(provider)
    fake.payment_intents[attempt.payment_intent_id]["status"] = "processing"
    assert provider.close_payment(attempt).state == PAYMENT_PENDING
    assert fake.posts(f"/v1/payment_intents/{attempt.payment_intent_id}/cancel") == []


def test_a_complete_session_awaiting_its_payment_stays_pending_until_that_fails(provider, fake):
    attempt = started_attempt(provider, "checkout_session")
    fake.complete_session(attempt.checkout_session_id, paid=False)
    intent_id = fake.sessions[attempt.checkout_session_id]["payment_intent"]
    fake.payment_intents[intent_id]["status"] = "processing"
    assert provider.close_payment(attempt).state == PAYMENT_PENDING

    fake.decline(intent_id)  # its asynchronous payment failed: nothing more can be paid
    state = provider.close_payment(attempt)
    assert (state.state, state.failure_code) == (PAYMENT_CLOSED, "insufficient_funds")
    assert not [r for r in fake.requests if r["path"].endswith(("/cancel", "/expire"))]


def test_close_of_an_attempt_with_nothing_at_stripe_calls_nothing(provider, fake):
    attempt = provider.build_attempt(payment_request())
    state = provider.close_payment(attempt)
    assert (state.state, state.provider_payment_id) == (PAYMENT_CLOSED, "")
    assert (state.amount, state.currency, state.attempt_bid, state.order_bid) == (
        1990,
        "usd",
        attempt.attempt_bid,
        attempt.order_bid,
    )
    assert fake.requests == []


@pytest.mark.parametrize("method", ["payment_intent", "checkout_session"])
def test_close_when_stripe_fails_is_unavailable_after_the_retries(
    provider, fake, monkeypatch, method
):
    attempt = started_attempt(provider, method)
    service = (
        provider.client.v1.checkout.sessions
        if method == "checkout_session"
        else provider.client.v1.payment_intents
    )
    after_looking(monkeypatch, service, lambda: fake.fail_next(503, times=3))

    with pytest.raises(ProviderUnavailable) as caught:
        provider.close_payment(attempt)

    closes = [r for r in fake.requests if r["path"].endswith(("/cancel", "/expire"))]
    # The SDK's own retries of one call share its key; none of ours is sent.
    assert len(closes) == 3 and len({r["idempotency_key"] for r in closes}) == 1
    assert not (closes[0]["idempotency_key"] or "").startswith("close-")
    assert caught.value.details["http_status"] == 503
    assert provider.fetch_payment(attempt.provider_payment_id).state == PAYMENT_PENDING


def test_close_when_stripe_cannot_be_reached_is_unavailable(provider, fake, stripe_settings):
    attempt = started_attempt(provider)
    stripe_settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ProviderUnavailable):
        StripeProvider().close_payment(attempt)


def test_a_cancel_refused_for_another_reason_is_raised(provider, fake, monkeypatch):
    attempt = started_attempt(provider)
    refusal = {"error": {"type": "invalid_request_error", "code": "parameter_unknown",
                         "message": "Received unknown parameter"}}  # fmt: skip
    after_looking(
        monkeypatch,
        provider.client.v1.payment_intents,
        lambda: fake.fail_next(400, body=json.dumps(refusal).encode()),
    )
    with pytest.raises(ProviderRequestRefused) as caught:
        provider.close_payment(attempt)
    assert caught.value.details["provider_code"] == "parameter_unknown"


# ---- refunds ----


def test_refund_sends_idempotency_key_and_metadata(provider, fake):
    intent_id = paid_intent(provider, fake)
    request = refund_request(intent_id, amount=500)
    state = provider.refund(request)

    (sent,) = fake.posts("/v1/refunds")
    assert sent["params"] == {
        "payment_intent": intent_id,
        "amount": "500",
        "metadata": {"refund_bid": request.refund_bid, "reason": request.reason},
    }
    assert sent["idempotency_key"] == f"refund-{request.refund_bid}"
    assert state.provider_refund_id.startswith("re_")
    assert (state.state, state.amount, state.currency) == (REFUND_SUCCEEDED, 500, "usd")
    assert (state.provider_payment_id, state.refund_bid) == (intent_id, request.refund_bid)


def test_a_retried_refund_is_made_once(provider, fake):
    intent_id = paid_intent(provider, fake)
    request = refund_request(intent_id)
    fake.fail_next(503)
    first = provider.refund(request)
    again = provider.refund(request)  # the services' retry after an unclear answer
    assert again.provider_refund_id == first.provider_refund_id
    keys = [sent["idempotency_key"] for sent in fake.posts("/v1/refunds")]
    assert keys == [f"refund-{request.refund_bid}"] * 3
    assert len(fake.refunds) == 1


def test_refund_of_a_checkout_session_refunds_its_payment_intent(provider, fake):
    session_id = provider.start_payment(payment_request("checkout_session")).provider_payment_id
    fake.complete_session(session_id)
    state = provider.refund(refund_request(session_id))
    intent_id = fake.sessions[session_id]["payment_intent"]
    assert state.provider_payment_id == intent_id
    assert fake.posts("/v1/refunds")[0]["params"]["payment_intent"] == intent_id


def test_refund_of_an_unpaid_checkout_session_is_refused(provider, fake):
    session_id = provider.start_payment(payment_request("checkout_session")).provider_payment_id
    assert provider.find_refund(session_id, "bid-1") is None  # it took no money
    with pytest.raises(ProviderRequestRefused):
        provider.refund(refund_request(session_id, "bid-1"))
    assert fake.posts("/v1/refunds") == []
    assert [r for r in fake.requests if r["path"] == "/v1/refunds"] == []


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("pending", REFUND_PENDING),
        ("requires_action", REFUND_PENDING),
        ("succeeded", REFUND_SUCCEEDED),
        ("failed", REFUND_FAILED),
        ("canceled", REFUND_FAILED),
    ],
)
def test_refund_statuses(provider, fake, status, state):
    intent_id = paid_intent(provider, fake)
    fake.refund_status = status
    refund = provider.refund(refund_request(intent_id))
    assert refund.state == state
    assert bool(refund.failure_code) is (state == REFUND_FAILED)


def test_refunding_more_than_remains_is_refused(provider, fake):
    intent_id = paid_intent(provider, fake)
    with pytest.raises(ProviderRequestRefused) as caught:
        provider.refund(refund_request(intent_id, amount=5000))
    assert caught.value.details["provider_code"] == "amount_too_large"


def test_fetch_refund(provider, fake):
    intent_id = paid_intent(provider, fake)
    fake.refund_status = "pending"
    made = provider.refund(refund_request(intent_id))
    fake.refunds[made.provider_refund_id]["status"] = "succeeded"
    state = provider.fetch_refund(intent_id, made.provider_refund_id)
    assert (state.provider_refund_id, state.state) == (made.provider_refund_id, REFUND_SUCCEEDED)
    with pytest.raises(ProviderBadResponse):
        provider.fetch_refund("pi_3SomeOtherIntent", made.provider_refund_id)


def test_find_refund_by_its_metadata_on_every_page(provider, fake, monkeypatch):
    monkeypatch.setattr(stripe_module, "REFUND_PAGE_SIZE", 2)
    intent_id = paid_intent(provider, fake)
    other_intent = paid_intent(provider, fake)
    made = [provider.refund(refund_request(intent_id, f"bid{n}", amount=100)) for n in range(5)]
    provider.refund(refund_request(other_intent, "elsewhere", amount=100))
    for n, refund in enumerate(made):  # listed newest first: bid0 is on the third page
        fake.refunds[refund.provider_refund_id]["created"] = 1_780_000_000 + n

    found = provider.find_refund(intent_id, "bid0")
    assert found is not None and found.provider_refund_id == made[0].provider_refund_id
    assert found.refund_bid == "bid0" and found.state == REFUND_SUCCEEDED
    lists = [r for r in fake.requests if r["method"] == "GET" and r["path"] == "/v1/refunds"]
    assert len(lists) == 3
    assert all(r["params"]["payment_intent"] == intent_id for r in lists)
    assert all(r["params"]["limit"] == "2" for r in lists)
    assert lists[1]["params"]["starting_after"] == made[3].provider_refund_id

    assert provider.find_refund(intent_id, "elsewhere") is None
    assert provider.find_refund(intent_id, "never-made") is None
    assert len(provider.refunds_of(intent_id)) == 5


def test_find_refund_prefers_a_live_refund_over_a_failed_one(provider, fake):
    intent_id = paid_intent(provider, fake)
    fake.refund_status = "failed"
    failed = provider.refund(refund_request(intent_id, "bid-1", amount=100))
    assert provider.find_refund(intent_id, "bid-1").state == REFUND_FAILED
    live = {**fake.refunds[failed.provider_refund_id], "id": "re_3Live", "status": "succeeded"}
    live["created"] -= 100  # older, so listed after the failed one
    fake.refunds["re_3Live"] = live
    found = provider.find_refund(intent_id, "bid-1")
    assert (found.provider_refund_id, found.state) == ("re_3Live", REFUND_SUCCEEDED)


def test_find_refund_raises_when_the_list_cannot_be_read(provider, fake, monkeypatch):
    monkeypatch.setattr(stripe_module, "REFUND_PAGE_SIZE", 1)
    intent_id = paid_intent(provider, fake)
    for bid in ("a", "b"):
        provider.refund(refund_request(intent_id, bid, amount=100))
    fake.fail_next(500, times=3)
    with pytest.raises(ProviderUnavailable):
        provider.find_refund(intent_id, "a")
    # The first page reads, the second does not: still an error, never None.
    original = fake._list_refunds

    def second_page_fails(params):
        if params.get("starting_after"):
            raise StripeFakeError(500, "Something went wrong.", kind="api_error")
        return original(params)

    monkeypatch.setattr(fake, "_list_refunds", second_page_fails)
    fake.requests.clear()
    with pytest.raises(ProviderUnavailable):
        provider.find_refund(intent_id, "no-such-bid")
    assert [bool(r["params"].get("starting_after")) for r in fake.requests] == [
        False,
        True,
        True,
        True,
    ]


# ---- attempt rows ----


def test_build_attempt(provider):
    request = payment_request(currency="USD")
    attempt = provider.build_attempt(request)
    assert attempt.pk is None
    assert attempt.stripe_order_bid == attempt.attempt_bid == request.attempt_bid
    assert (attempt.user_bid, attempt.product_bid, attempt.order_bid) == (
        request.user_bid,
        request.product_bid,
        request.order_bid,
    )
    assert (attempt.amount, attempt.currency) == (1990, "usd")
    assert attempt.status == AttemptStatus.PENDING
    assert attempt.payment_intent_id is None and attempt.checkout_session_id is None
    assert attempt.metadata == {
        "order_bid": request.order_bid,
        "attempt_bid": request.attempt_bid,
        "product_bid": request.product_bid,
    }


@pytest.mark.django_db
def test_apply_start_and_client_data_of_a_payment_intent(provider, fake):
    request = payment_request()
    attempt = provider.build_attempt(request)
    attempt.save()
    start = provider.start_payment(request)
    fields = provider.apply_start(attempt, start)
    attempt.save(update_fields=fields)
    attempt.refresh_from_db()
    assert set(fields) == {"payment_intent_id", "payment_intent_object", "updated_at"}
    assert attempt.payment_intent_id == start.provider_payment_id
    assert attempt.provider_payment_id == start.provider_payment_id
    assert attempt.payment_intent_object["client_secret"] == start.client_data["client_secret"]
    assert attempt.method_name == "payment_intent"
    assert provider.client_data(attempt) == start.client_data


@pytest.mark.django_db
def test_apply_start_and_client_data_of_a_checkout_session(provider, fake):
    request = payment_request("checkout_session")
    attempt = provider.build_attempt(request)
    attempt.save()
    start = provider.start_payment(request)
    fields = provider.apply_start(attempt, start)
    attempt.save(update_fields=fields)
    attempt.refresh_from_db()
    assert set(fields) == {"checkout_session_id", "checkout_session_object", "updated_at"}
    assert attempt.checkout_session_id == start.provider_payment_id
    assert attempt.payment_intent_id is None
    assert attempt.provider_payment_id == start.provider_payment_id
    assert attempt.method_name == "checkout_session"
    assert provider.client_data(attempt) == start.client_data


@pytest.mark.django_db
def test_apply_payment_state_of_a_paid_payment_intent(provider, fake):
    request = payment_request()
    attempt = provider.build_attempt(request)
    attempt.save()
    start = provider.start_payment(request)
    attempt.save(update_fields=provider.apply_start(attempt, start))
    fake.succeed(start.provider_payment_id)
    state = provider.fetch_payment(start.provider_payment_id)

    fields = provider.apply_payment_state(attempt, state)
    attempt.save(update_fields=fields)
    attempt.refresh_from_db()
    intent = fake.payment_intents[start.provider_payment_id]
    charge = fake.charges[intent["latest_charge"]]
    assert attempt.latest_charge_id == charge["id"]
    assert attempt.receipt_url == charge["receipt_url"]
    assert attempt.payment_method == "pm_1FakeCard"
    assert attempt.payment_intent_object["status"] == "succeeded"
    assert attempt.status == AttemptStatus.PENDING  # the services set it
    assert "status" not in fields
    assert provider.apply_payment_state(attempt, state) == []  # nothing new


@pytest.mark.django_db
def test_a_completed_session_reveals_its_payment_intent(provider):
    event = provider.event_from_stripe(payload("checkout.session.completed"))
    attempt = StripeOrderFactory(
        payment_intent_id=None,
        checkout_session_id=event.payment.provider_payment_id,
        stripe_order_bid=event.payment.attempt_bid,
    )
    fields = provider.apply_payment_state(attempt, event.payment)
    attempt.save(update_fields=fields)
    attempt.refresh_from_db()
    assert attempt.payment_intent_id == "pi_3RecordedSession0000001"
    assert attempt.provider_payment_id == "pi_3RecordedSession0000001"
    assert attempt.checkout_session_object["payment_status"] == "paid"
    assert attempt.method_name == "checkout_session"
    # The PaymentIntent's own event then finds the attempt by either id.
    assert provider.attempts_for(provider_payment_id="pi_3RecordedSession0000001").get() == attempt


@pytest.mark.django_db
def test_apply_payment_state_of_a_decline(provider):
    event = provider.event_from_stripe(payload("payment_intent.payment_failed"))
    attempt = StripeOrderFactory(payment_intent_id=event.payment.provider_payment_id)
    fields = provider.apply_payment_state(attempt, event.payment)
    attempt.save(update_fields=fields)
    attempt.refresh_from_db()
    assert attempt.failure_code == "insufficient_funds"
    assert attempt.failure_message == "Your card has insufficient funds."
    assert attempt.failure_text == "Your card has insufficient funds."
    assert attempt.latest_charge_id == "ch_3RecordedDeclined000001"
    assert attempt.status == AttemptStatus.PENDING


@pytest.mark.django_db
def test_apply_payment_state_of_a_start_that_failed(provider):
    """What the services record when creating the payment raised: no id, no object."""
    attempt = StripeOrderFactory(payment_intent_id=None)
    state = PaymentState(
        provider_payment_id="",
        state=PAYMENT_FAILED,
        amount=1990,
        currency="usd",
        attempt_bid=attempt.attempt_bid,
        failure_code="x" * 300,
        failure_message="Stripe could not be reached.",
    )
    fields = provider.apply_payment_state(attempt, state)
    attempt.save(update_fields=[*fields, "status"])
    attempt.refresh_from_db()
    assert attempt.failure_code == "x" * 255
    assert attempt.failure_message == "Stripe could not be reached."
    assert attempt.payment_intent_id is None and attempt.payment_intent_object is None


@pytest.mark.django_db
def test_attempts_for(provider):
    intent_attempt = StripeOrderFactory(payment_intent_id="pi_3A")
    session_attempt = StripeOrderFactory(payment_intent_id="pi_3B", checkout_session_id="cs_test_B")
    waiting = StripeOrderFactory(payment_intent_id=None, checkout_session_id="cs_test_C")
    assert list(provider.attempts_for(provider_payment_id="pi_3A")) == [intent_attempt]
    assert list(provider.attempts_for(provider_payment_id="pi_3B")) == [session_attempt]
    assert list(provider.attempts_for(provider_payment_id="cs_test_B")) == [session_attempt]
    assert list(provider.attempts_for(provider_payment_id="cs_test_C")) == [waiting]
    assert list(provider.attempts_for(attempt_bid=waiting.attempt_bid)) == [waiting]
    assert list(provider.attempts_for()) == []
    assert list(provider.attempts_for(provider_payment_id="pi_3Unknown")) == []


# ---- events ----


EVENTS = [
    # file, kind, state, provider id, amount, attempt bid
    ("payment_intent.succeeded", EVENT_PAYMENT, PAYMENT_SUCCEEDED,
     "pi_3RecordedSucceeded000001", 1990, "attempt0000000000000000recorded1"),
    ("payment_intent.payment_failed", EVENT_PAYMENT, PAYMENT_FAILED,
     "pi_3RecordedFailed00000001", 1990, "attempt0000000000000000recorded1"),
    ("payment_intent.canceled", EVENT_PAYMENT, PAYMENT_CLOSED,
     "pi_3RecordedCanceled0000001", 1990, "attempt0000000000000000recorded1"),
    ("checkout.session.completed", EVENT_PAYMENT, PAYMENT_SUCCEEDED,
     "cs_test_a1RecordedSessionPaid000000000000000000000000000001", 1990,
     "attempt0000000000000000recorded1"),
    ("checkout.session.completed.unpaid", EVENT_PAYMENT, PAYMENT_PENDING,
     "cs_test_a1RecordedSessionAsync00000000000000000000000000002", 1990,
     "attempt0000000000000000recorded2"),
    ("checkout.session.async_payment_succeeded", EVENT_PAYMENT, PAYMENT_SUCCEEDED,
     "cs_test_a1RecordedSessionAsync00000000000000000000000000002", 1990,
     "attempt0000000000000000recorded2"),
    ("checkout.session.async_payment_failed", EVENT_PAYMENT, PAYMENT_FAILED,
     "cs_test_a1RecordedSessionAsync00000000000000000000000000002", 1990,
     "attempt0000000000000000recorded2"),
    ("checkout.session.expired", EVENT_PAYMENT, PAYMENT_CLOSED,
     "cs_test_a1RecordedSessionExpired0000000000000000000000000003", 1990,
     "attempt0000000000000000recorded3"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kind", "state", "payment_id", "amount", "attempt_bid"), EVENTS)
def test_payment_events(provider, name, kind, state, payment_id, amount, attempt_bid):
    body = payload(name)
    event = provider.event_from_stripe(body)
    assert (event.event_id, event.event_type) == (body["id"], body["type"])
    assert event.kind == kind and event.livemode is False and event.refund is None
    payment = event.payment
    assert payment.state == state
    assert payment.provider_payment_id == payment_id
    assert (payment.amount, payment.currency) == (amount, "usd")
    assert payment.attempt_bid == attempt_bid
    assert payment.order_bid == "0rder000000000000000000recorded1"
    assert payment.raw == body["data"]["object"]
    assert event.raw == body


def test_failure_of_a_declined_payment_intent_event(provider):
    payment = provider.event_from_stripe(payload("payment_intent.payment_failed")).payment
    assert payment.failure_code == "insufficient_funds"  # the decline code before the code
    assert payment.failure_message == "Your card has insufficient funds."


def test_failure_of_an_asynchronous_checkout_payment(provider):
    payment = provider.event_from_stripe(payload("checkout.session.async_payment_failed")).payment
    assert payment.failure_code == "async_payment_failed"


def test_events_follow_rewritten_metadata_and_amounts(provider):
    body = payload("payment_intent.succeeded")
    intent = body["data"]["object"]
    intent["metadata"].update(order_bid="o" * 32, attempt_bid="a" * 32)
    intent.update(amount=500, amount_received=500, currency="JPY")
    payment = provider.event_from_stripe(body).payment
    assert (payment.attempt_bid, payment.order_bid) == ("a" * 32, "o" * 32)
    assert (payment.amount, payment.currency) == (500, "jpy")


def test_payment_intent_succeeded_reports_the_amount_received(provider):
    body = payload("payment_intent.succeeded")
    body["data"]["object"]["amount_received"] = 990
    assert provider.event_from_stripe(body).payment.amount == 990


@pytest.mark.parametrize(
    ("name", "state", "refund_id", "amount", "refund_bid", "failure"),
    [
        ("refund.created", REFUND_PENDING, "re_3RecordedRefund00000001", 500,
         "refund000000000000000000recorded1", ""),
        ("refund.updated", REFUND_SUCCEEDED, "re_3RecordedRefund00000001", 500,
         "refund000000000000000000recorded1", ""),
        ("refund.failed", REFUND_FAILED, "re_3RecordedRefund00000002", 1490,
         "refund000000000000000000recorded2", "expired_or_canceled_card"),
    ],
)  # fmt: skip
def test_refund_events(provider, name, state, refund_id, amount, refund_bid, failure):
    body = payload(name)
    event = provider.event_from_stripe(body)
    assert event.kind == EVENT_REFUND and event.payment is None
    refund = event.refund
    assert (refund.state, refund.provider_refund_id) == (state, refund_id)
    assert refund.provider_payment_id == "pi_3RecordedSucceeded000001"
    assert (refund.amount, refund.currency, refund.refund_bid) == (amount, "usd", refund_bid)
    assert refund.livemode is False
    assert refund.failure_code == failure


def test_charge_refunded_without_its_refunds_is_other(provider):
    """Since API version 2022-11-15 a charge does not carry its refunds."""
    event = provider.event_from_stripe(payload("charge.refunded"))
    assert event.kind == EVENT_OTHER
    assert event.payment is None and event.refund is None


def test_charge_refunded_with_its_refunds_reports_the_latest(provider):
    body = payload("charge.refunded")
    older = payload("refund.updated")["data"]["object"]
    newer = {**payload("refund.created")["data"]["object"], "id": "re_3Newer", "amount": 300}
    newer.update(created=older["created"] + 60, status="succeeded")
    body["data"]["object"]["refunds"] = {
        "object": "list",
        "data": [newer, older],
        "has_more": False,
        "url": "/v1/charges/ch_3RecordedCharge00000001/refunds",
    }
    event = provider.event_from_stripe(body)
    assert event.kind == EVENT_REFUND
    assert (event.refund.provider_refund_id, event.refund.amount) == ("re_3Newer", 300)
    assert event.refund.state == REFUND_SUCCEEDED
    body["data"]["object"]["refunds"]["data"] = [older, newer]  # order does not matter
    assert provider.event_from_stripe(body).refund.provider_refund_id == "re_3Newer"


def test_refunds_of_a_payment_intent_for_charge_refunded(provider, fake):
    intent_id = paid_intent(provider, fake)
    made = {provider.refund(refund_request(intent_id, amount=100)).provider_refund_id for _ in "ab"}
    states = provider.refunds_of(intent_id)
    assert {state.provider_refund_id for state in states} == made
    assert all(state.provider_payment_id == intent_id for state in states)


def test_other_event_types_are_other(provider):
    body = payload("payment_intent.succeeded")
    body["type"] = "payment_intent.created"
    event = provider.event_from_stripe(body)
    assert (event.kind, event.event_type) == (EVENT_OTHER, "payment_intent.created")


def test_event_from_an_sdk_event_object(provider):
    body = payload("payment_intent.succeeded")
    event = provider.event_from_stripe(stripe.Event.construct_from(body, SECRET_KEY))
    assert event.payment.provider_payment_id == "pi_3RecordedSucceeded000001"
    assert event.raw == body


def mangled(name: str, **fields) -> dict:
    """A recorded event whose object has ``fields`` changed (None: removed)."""
    body = payload(name)
    obj = body["data"]["object"]
    for key, value in fields.items():
        if value is None:
            obj.pop(key)
        else:
            obj[key] = value
    return body


def event_with(name: str, **fields) -> dict:
    return {**payload(name), **fields}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"id": "evt_1", "type": "payment_intent.succeeded"},
        event_with("payment_intent.succeeded", object="v2.core.event"),
        event_with("payment_intent.succeeded", data={"object": "pi_1"}),
        event_with("payment_intent.succeeded", id=None),
        mangled("payment_intent.succeeded", status="processing"),
        mangled("payment_intent.succeeded", currency=None),
        mangled("payment_intent.succeeded", amount_received="19.90"),
        mangled("payment_intent.payment_failed", object="charge"),
        mangled("checkout.session.completed", amount_total="19.90"),
        mangled("checkout.session.async_payment_succeeded", payment_status="unpaid"),
        mangled("checkout.session.expired", status=None),
        mangled("refund.updated", status=None),
        mangled("refund.updated", payment_intent=""),
        mangled("refund.failed", amount=True),
        mangled("charge.refunded", refunds={"data": ["re_1"]}),
    ],
)
def test_malformed_events_are_invalid_payloads(provider, body):
    with pytest.raises(WebhookPayloadInvalid) as caught:
        provider.event_from_stripe(body)
    assert caught.value.details["signature"] == "valid"


# ---- webhooks ----


def test_a_validly_signed_webhook(provider):
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    event = provider.parse_webhook(body, signed(body))
    assert event.event_id == "evt_3RecordedPiSucceeded00001"
    assert event.payment.state == PAYMENT_SUCCEEDED


@pytest.mark.parametrize(
    "name", ["stripe-signature", "STRIPE-SIGNATURE", "HTTP_STRIPE_SIGNATURE", "Stripe_Signature"]
)
def test_the_signature_header_in_any_spelling(provider, name):
    body = (PAYLOADS / "refund.created.json").read_bytes()
    headers = {name: signed(body)["Stripe-Signature"]}
    assert provider.parse_webhook(body, headers).kind == EVENT_REFUND


def test_a_webhook_without_signature(provider):
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    with pytest.raises(WebhookSignatureInvalid) as caught:
        provider.parse_webhook(body, {"Content-Type": "application/json"})
    assert caught.value.details["signature"] == "missing"


@pytest.mark.parametrize(
    "headers",
    [
        lambda body: signed(body, secret="whsec_someone_else"),
        lambda body: signed(body + b" "),
        lambda body: signed(body, at=int(time.time()) - 301),  # older than 300 s
        lambda body: {"Stripe-Signature": "t=abc,v1=def"},
        lambda body: {"Stripe-Signature": signed(body)["Stripe-Signature"].replace("v1=", "v0=")},
    ],
    ids=["wrong-secret", "other-body", "expired", "garbled", "other-scheme"],
)
def test_webhooks_that_do_not_verify(provider, headers):
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    with pytest.raises(WebhookSignatureInvalid) as caught:
        provider.parse_webhook(body, headers(body))
    assert caught.value.details["signature"] == "invalid"
    assert caught.value.http_status == 401


def test_a_signature_within_the_tolerance_verifies(provider):
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    assert provider.parse_webhook(body, signed(body, at=int(time.time()) - 290)).payment


def test_a_body_that_is_not_utf8_is_not_stripes(provider):
    body = b"\xff\xfe{}"
    with pytest.raises(WebhookSignatureInvalid):
        provider.parse_webhook(body, signed(body))


@pytest.mark.parametrize("body", [b"not json", b'{"id": "evt_1"}', b"[]"])
def test_validly_signed_bodies_that_are_not_events(provider, body):
    with pytest.raises(WebhookPayloadInvalid) as caught:
        provider.parse_webhook(body, signed(body))
    assert caught.value.details["signature"] == "valid"


def test_webhooks_without_a_secret_are_refused(stripe_settings):
    stripe_settings.STRIPE_WEBHOOK_SECRET = ""
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    with pytest.raises(WebhookNotConfigured):
        StripeProvider().parse_webhook(body, signed(body))


# ---- with the services ----


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


def test_without_amount_received_the_succeeded_charge_says_what_was_received():
    from payments.providers.stripe import payment_intent_state

    intent = {
        "id": "pi_old_api", "object": "payment_intent", "status": "succeeded",
        "amount": 1990, "currency": "usd", "metadata": {},
        "latest_charge": {"id": "ch_1", "object": "charge", "amount": 1500, "paid": True},
    }  # fmt: skip
    assert payment_intent_state(intent).amount == 1500  # never the amount asked for
    del intent["latest_charge"]
    with pytest.raises(Exception, match="amount_received"):
        payment_intent_state(intent)
