"""Stripe's errors as ProviderError subclasses, through the real SDK."""

from __future__ import annotations

import json

import pytest

from payments.providers.base import ProviderBadResponse, ProviderRequestRefused, ProviderUnavailable
from payments.providers.stripe import StripeProvider
from tests.payments.providers.stripe.helpers import closed_port, payment_request


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
