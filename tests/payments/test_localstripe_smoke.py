"""The Stripe test infrastructure works: localstripe answers the real SDK.

These tests need neither our provider nor our receivers, so that a failure points at
the infrastructure; tests/payments/test_stripe_localstripe.py drives the service with
it, its webhooks included.
"""

from __future__ import annotations

import pytest
import stripe

from tests.localstripe import StripeLocal

VISA = "4242424242424242"
# localstripe declines 4000000000000341 when it is charged; 4000000000000002, Stripe's
# generic decline, it declines only when it is attached to a customer.
DECLINED_WHEN_CHARGED = "4000000000000341"
DECLINED_WHEN_ATTACHED = "4000000000000002"

WEBHOOK_WAIT_SECONDS = 10


def card(client: stripe.StripeClient, number: str) -> stripe.PaymentMethod:
    return client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        }
    )


def intent(client: stripe.StripeClient, number: str, amount: int = 1000) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method": card(client, number).id,
            "metadata": {"order_bid": "smoke"},
        }
    )


def paid_intent(client: stripe.StripeClient, amount: int = 1000) -> stripe.PaymentIntent:
    payment_intent = client.v1.payment_intents.confirm(intent(client, VISA, amount).id)
    assert payment_intent.status == "succeeded"
    return payment_intent


def test_a_card_payment_succeeds(stripe_local: StripeLocal):
    client = stripe_local.client()
    payment_intent = intent(client, VISA, amount=2500)
    assert payment_intent.status == "requires_confirmation"

    client.v1.payment_intents.confirm(payment_intent.id)

    paid = client.v1.payment_intents.retrieve(payment_intent.id)
    assert paid.status == "succeeded"
    assert paid.amount == 2500
    assert paid.metadata["order_bid"] == "smoke"
    # localstripe always expands latest_charge, where Stripe gives its id unless asked.
    charge = paid.latest_charge
    assert charge.status == "succeeded"
    assert charge.amount == 2500
    assert charge.payment_intent == payment_intent.id


def test_a_card_declined_when_charged_fails_the_confirmation(stripe_local: StripeLocal):
    client = stripe_local.client()
    payment_intent = intent(client, DECLINED_WHEN_CHARGED)

    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.confirm(payment_intent.id)

    assert declined.value.code == "card_declined"
    assert declined.value.http_status == 402
    failed = client.v1.payment_intents.retrieve(payment_intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error["code"] == "card_declined"


def test_the_generic_decline_card_is_declined_when_attached(stripe_local: StripeLocal):
    client = stripe_local.client()
    customer = client.v1.customers.create(params={"email": "payer@example.com"})
    payment_method = card(client, DECLINED_WHEN_ATTACHED)

    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_methods.attach(payment_method.id, params={"customer": customer.id})

    assert declined.value.code == "card_declined"


def test_a_payment_is_refunded_in_part_then_in_full(stripe_local: StripeLocal):
    client = stripe_local.client()
    payment_intent = paid_intent(client, amount=1000)

    partial = client.v1.refunds.create(params={"payment_intent": payment_intent.id, "amount": 300})
    charge = client.v1.charges.retrieve(payment_intent.latest_charge.id)
    assert (partial.status, partial.amount, partial.charge) == ("succeeded", 300, charge.id)
    assert (charge.amount_refunded, charge.refunded) == (300, False)

    # localstripe refunds the whole charge when no amount is given, even after a
    # partial refund (and it accepts refunds beyond the charge): always pass the amount.
    rest = client.v1.refunds.create(params={"payment_intent": payment_intent.id, "amount": 700})
    charge = client.v1.charges.retrieve(charge.id)
    assert (rest.status, rest.amount) == ("succeeded", 700)
    assert (charge.amount_refunded, charge.refunded) == (1000, True)
    refunds = client.v1.refunds.list(params={"payment_intent": payment_intent.id})
    assert sorted(refund.amount for refund in refunds.data) == [300, 700]


def test_flush_forgets_every_object(stripe_local: StripeLocal):
    client = stripe_local.client()
    payment_intent = paid_intent(client)

    stripe_local.server.flush()

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.retrieve(payment_intent.id)
