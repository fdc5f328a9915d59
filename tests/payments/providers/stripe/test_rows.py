"""The StripeOrder attempt rows."""

from __future__ import annotations

import pytest

from payments.models import AttemptStatus
from payments.providers.base import PAYMENT_FAILED, PaymentState
from tests.factories import StripeOrderFactory
from tests.payments.providers.stripe.helpers import payload, payment_request


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
    assert attempt.payment_intent_id == "" and attempt.checkout_session_id == ""
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
    assert attempt.payment_intent_id == ""
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
        payment_intent_id="",
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
    attempt = StripeOrderFactory(payment_intent_id="")
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
    assert attempt.payment_intent_id == "" and attempt.payment_intent_object == {}


@pytest.mark.django_db
def test_attempts_for(provider):
    intent_attempt = StripeOrderFactory(payment_intent_id="pi_3A")
    session_attempt = StripeOrderFactory(payment_intent_id="pi_3B", checkout_session_id="cs_test_B")
    waiting = StripeOrderFactory(payment_intent_id="", checkout_session_id="cs_test_C")
    assert list(provider.attempts_for(provider_payment_id="pi_3A")) == [intent_attempt]
    assert list(provider.attempts_for(provider_payment_id="pi_3B")) == [session_attempt]
    assert list(provider.attempts_for(provider_payment_id="cs_test_B")) == [session_attempt]
    assert list(provider.attempts_for(provider_payment_id="cs_test_C")) == [waiting]
    assert list(provider.attempts_for(attempt_bid=waiting.attempt_bid)) == [waiting]
    assert list(provider.attempts_for()) == []
    assert list(provider.attempts_for(provider_payment_id="pi_3Unknown")) == []
