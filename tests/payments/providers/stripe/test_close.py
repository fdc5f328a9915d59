"""Closing payments: cancelling PaymentIntents, expiring Checkout Sessions."""

from __future__ import annotations

import json

import pytest

from payments.models import AttemptStatus, StripeOrder
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from payments.providers.stripe import StripeProvider
from tests.payments.providers.stripe.helpers import closed_port, payment_request


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
