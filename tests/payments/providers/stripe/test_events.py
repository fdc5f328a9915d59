"""Recorded Stripe events, read as ProviderEvent."""

from __future__ import annotations

import json

import pytest
import stripe

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
    WebhookPayloadInvalid,
)
from payments.providers.stripe.events import redacted
from tests.payments.providers.stripe.helpers import (
    PAYLOADS,
    SECRET_KEY,
    paid_intent,
    payload,
    refund_request,
    signed,
)

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
    assert payment.raw == redacted(body)["data"]["object"]
    assert event.raw == redacted(body)


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
    assert event.raw == redacted(body)


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


def test_without_amount_received_the_succeeded_charge_says_what_was_received():
    from payments.providers.stripe.payloads import payment_intent_state

    intent = {
        "id": "pi_old_api", "object": "payment_intent", "status": "succeeded",
        "amount": 1990, "currency": "usd", "metadata": {},
        "latest_charge": {"id": "ch_1", "object": "charge", "amount": 1500, "paid": True},
    }  # fmt: skip
    assert payment_intent_state(intent).amount == 1500  # never the amount asked for
    del intent["latest_charge"]
    with pytest.raises(Exception, match="amount_received"):
        payment_intent_state(intent)


def test_a_stored_event_is_parsed_again_as_when_it_was_verified(provider):
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    verified = provider.parse_webhook(body, signed(body))
    assert provider.event_from_payload(json.loads(body)) == verified
