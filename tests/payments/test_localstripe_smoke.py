"""The Stripe test infrastructure works: localstripe answers the real SDK, and its signed
webhooks reach dj-stripe through a live server, which verifies, logs and syncs them.

These tests need neither our provider nor our receivers: the receivers are disconnected
here, so that a failure points at the infrastructure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
import stripe
from django.urls import NoReverseMatch, reverse
from djstripe import models as djstripe_models
from djstripe.settings import djstripe_settings
from djstripe.signals import WEBHOOK_SIGNALS

from payments import stripe_webhooks
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


# ---- Webhooks, through dj-stripe ----


@pytest.fixture
def without_our_receivers() -> Iterator[None]:
    """dj-stripe's own handlers only: ours need our provider and orders."""
    signals = [WEBHOOK_SIGNALS[name] for name in stripe_webhooks.HANDLED_EVENTS]
    for signal in signals:
        assert signal.disconnect(stripe_webhooks.apply_stripe_event, sender=djstripe_models.Event)
    try:
        yield
    finally:
        for signal in signals:
            signal.connect(stripe_webhooks.apply_stripe_event, sender=djstripe_models.Event)


def webhook_endpoint(stripe_local: StripeLocal) -> djstripe_models.WebhookEndpoint:
    account = djstripe_models.Account.objects.get(id=stripe_local.account_id)
    return djstripe_models.WebhookEndpoint.objects.create(
        id="we_localstripe000000000",
        djstripe_owner_account=account,
        livemode=False,
        url="http://localhost/stripe/webhook/",
        secret=stripe_local.webhook_secret,
        status="enabled",
        enabled_events=["*"],
        api_version=djstripe_settings.STRIPE_API_VERSION,
        djstripe_validation_method="verify_signature",
        djstripe_tolerance=300,
    )


def webhook_path(endpoint: djstripe_models.WebhookEndpoint) -> str:
    try:
        return reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint.djstripe_uuid})
    except NoReverseMatch:
        pytest.fail(
            'payments/urls.py needs path("stripe/", include("djstripe.urls", namespace="djstripe"))'
        )


def triggers_for(event_type: str, object_id: str) -> list[djstripe_models.WebhookEventTrigger]:
    return [
        trigger
        for trigger in djstripe_models.WebhookEventTrigger.objects.order_by("id")
        if trigger.json_body.get("type") == event_type
        and trigger.json_body.get("data", {}).get("object", {}).get("id") == object_id
    ]


def sign(body: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


@pytest.mark.usefixtures("without_our_receivers")
def test_a_payment_webhook_reaches_dj_stripe_and_is_synced(stripe_local: StripeLocal, live_server):
    endpoint = webhook_endpoint(stripe_local)
    stripe_local.server.configure_webhook(
        "djstripe",
        live_server.url + webhook_path(endpoint),
        stripe_local.webhook_secret,
        events=["payment_intent.succeeded"],
    )
    payment_intent = paid_intent(stripe_local.client(), amount=1200)

    # dj-stripe stores the trigger first, then verifies and processes it in the same
    # request: wait until it has settled.
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while True:
        triggers = triggers_for("payment_intent.succeeded", payment_intent.id)
        if any(trigger.processed or trigger.exception for trigger in triggers):
            break
        assert time.monotonic() < deadline, (
            f"no webhook processed within {WEBHOOK_WAIT_SECONDS} s; triggers: {triggers}; "
            f"localstripe's log:\n{stripe_local.server.log()[-3000:]}"
        )
        time.sleep(0.1)

    [trigger] = triggers
    assert trigger.valid
    assert trigger.processed, f"{trigger.exception}\n{trigger.traceback}"
    assert trigger.webhook_endpoint == endpoint
    event = djstripe_models.Event.objects.get(id=trigger.json_body["id"])
    assert trigger.event == event
    assert event.type == "payment_intent.succeeded"
    assert event.djstripe_owner_account_id == stripe_local.account_id
    # dj-stripe fetched the PaymentIntent again from localstripe and kept its copy.
    synced = djstripe_models.PaymentIntent.objects.get(id=payment_intent.id)
    assert (synced.stripe_data["status"], synced.stripe_data["amount"]) == ("succeeded", 1200)


@pytest.mark.usefixtures("without_our_receivers")
def test_a_webhook_with_a_forged_signature_is_refused(stripe_local: StripeLocal, client):
    endpoint = webhook_endpoint(stripe_local)
    path = webhook_path(endpoint)
    payment_intent = paid_intent(stripe_local.client())
    now = int(time.time())
    body = json.dumps(
        {
            "id": "evt_forged00000000",
            "object": "event",
            "type": "payment_intent.succeeded",
            "livemode": False,
            "created": now,
            "api_version": "2017-08-15",
            "data": {"object": payment_intent.to_dict()},
        }
    ).encode()

    forged = client.post(
        path,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, "whsec_" + "forger".ljust(32, "0"), now),
    )

    assert forged.status_code == 400
    [trigger] = djstripe_models.WebhookEventTrigger.objects.all()
    assert (trigger.valid, trigger.processed) == (False, False)
    assert not djstripe_models.Event.objects.exists()

    # The same body, signed with the endpoint's secret, is taken: the signature made
    # the difference.
    genuine = client.post(
        path,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, stripe_local.webhook_secret, now),
    )
    assert genuine.status_code == 200, genuine.content
    assert djstripe_models.Event.objects.filter(id="evt_forged00000000").exists()
