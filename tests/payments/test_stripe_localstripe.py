"""Stripe end to end: orders paid and refunded through the real SDK against localstripe,
its signed webhooks delivered to /webhooks/stripe/, stored in the inbox, applied, then
synced into dj-stripe's copy (in the request here: the tests run without a broker).

Nothing is faked on our side: the provider, the receivers, the inbox and the services
are the production ones. localstripe posts only payment_intent.* events (about 1 s after
they happen) and never charge.* or refund.* ones, so refunds settle from the API's answer,
and the events it never sends are built here from its objects and signed like Stripe's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import requests
import stripe
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from djstripe import models as djstripe_models

from orders.models import OrderEvent, OrderStatus, Refund, RefundStatus, new_bid
from orders.services import (
    order_create,
    payment_start,
    payment_sync,
    payments_reconcile,
    refund_request,
)
from payments import registry
from payments.models import AttemptStatus, InboxStatus, StripeOrder, WebhookEvent
from payments.providers.base import PAYMENT_CLOSED, PAYMENT_SUCCEEDED
from tests.factories import ProductFactory
from tests.localstripe import StripeLocal
from tests.threads import run_together

VISA = "4242424242424242"
DECLINED_WHEN_CHARGED = "4000000000000341"  # localstripe declines it when it is charged
DELIVERED_EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed"]
WEBHOOK_WAIT_SECONDS = 10
POLL_SECONDS = 0.05


# What Stripe sends and localstripe lacks, and this service reads: a PaymentIntent's
# amount_received (what a succeeded payment is applied with, so these tests take the
# path production takes) and a refund's reason (the provider sends one; localstripe
# refuses any field it does not model). Run before tests/localstripe.py's SERVER, which
# starts the server; they belong in that SERVER, for every Stripe test.
@pytest.fixture
def stripe_channel(settings, stripe_local: StripeLocal) -> StripeLocal:
    """The stripe channel on, by default, its webhook endpoint recorded as operations do."""
    settings.PAYMENT_CHANNELS_ENABLED = ["stripe"]
    settings.DEFAULT_PAYMENT_CHANNEL = "stripe"
    call_command("stripe_webhook_endpoint", stdout=StringIO())
    return stripe_local


@pytest.fixture
def webhooks_delivered(stripe_channel: StripeLocal, live_server) -> StripeLocal:
    """localstripe posts its payment_intent events, signed, to the stable URL."""
    stripe_channel.server.configure_webhook(
        "service",
        live_server.url + reverse("webhook-stripe"),
        stripe_channel.webhook_secret,
        events=DELIVERED_EVENTS,
    )
    return stripe_channel


# ---- helpers ----


def started_order(price: str = "25.00", currency: str = "usd"):
    """An order of a new product and the PaymentIntent started for it: (started, attempt)."""
    product = ProductFactory(price=Decimal(price), currency=currency)
    order, created = order_create(user_bid=new_bid(), product_bid=product.product_bid)
    assert created
    started = payment_start(order=order, channel="stripe", method="payment_intent")
    return started, StripeOrder.objects.get(order_bid=order.order_bid)


def pay(client: stripe.StripeClient, intent_id: str, number: str = VISA) -> stripe.PaymentIntent:
    """Pay a PaymentIntent with a card, as Stripe.js would (localstripe takes no
    payment_method on confirm: it is set first)."""
    card = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        }
    )
    client.v1.payment_intents.update(intent_id, params={"payment_method": card.id})
    return client.v1.payment_intents.confirm(intent_id)


def event_settled(stripe_local: StripeLocal, event_type: str, object_id: str) -> WebhookEvent:
    """The inbox row of the delivery of ``event_type`` for ``object_id``, once it is
    no longer waiting to be applied."""
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while True:
        rows = [
            row
            for row in WebhookEvent.objects.filter(
                channel="stripe", event_type=event_type, object_id=object_id
            ).order_by("id")
            if row.status != InboxStatus.RECEIVED
        ]
        if rows:
            return rows[-1]
        assert time.monotonic() < deadline, (
            f"no {event_type} for {object_id} applied within {WEBHOOK_WAIT_SECONDS} s; "
            f"localstripe's log:\n{stripe_local.server.log()[-3000:]}"
        )
        time.sleep(POLL_SECONDS)


def synced(stripe_local: StripeLocal, event_id: str) -> djstripe_models.Event:
    """dj-stripe's record of the event, once its sync (after the event is applied) is
    done; a failed sync is written on the inbox row."""
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while True:
        event = djstripe_models.Event.objects.filter(id=event_id).first()
        if event is not None:
            return event
        row = WebhookEvent.objects.get(channel="stripe", event_id=event_id)
        assert time.monotonic() < deadline and not row.last_error, (
            f"{event_id} not synced: {row.last_error or 'no sync within the wait'}; "
            f"localstripe's log:\n{stripe_local.server.log()[-3000:]}"
        )
        time.sleep(POLL_SECONDS)


def assert_applied(row: WebhookEvent, stripe_local: StripeLocal) -> None:
    assert row.status == InboxStatus.APPLIED, (
        f"{row.status}: {row.last_error}\nlocalstripe's log:\n{stripe_local.server.log()[-3000:]}"
    )


def signed_event(secret: str, event_id: str, event_type: str, obj: dict) -> tuple[bytes, dict]:
    """A Stripe event of ``obj`` and the headers Stripe would send it with."""
    timestamp = int(time.time())
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "livemode": False,
            "created": timestamp,
            "api_version": "2017-08-15",
            "data": {"object": obj},
        }
    ).encode()
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return body, {
        "Content-Type": "application/json",
        "Stripe-Signature": f"t={timestamp},v1={signature.hexdigest()}",
    }


# ---- paying ----


def test_a_card_payment_is_applied_from_the_signed_webhook(webhooks_delivered: StripeLocal):
    stripe_local = webhooks_delivered
    client = stripe_local.client()
    started, attempt = started_order("25.00", "usd")
    order = started.order

    intent_id = started.client_data["payment_intent_id"]
    assert started.client_data["client_secret"].startswith(f"{intent_id}_secret_")
    assert started.client_data["publishable_key"] == stripe_local.publishable_key
    assert order.status == OrderStatus.UNPAID
    assert attempt.payment_intent_id == intent_id
    assert (attempt.amount, attempt.currency, attempt.status) == (
        2500,
        "usd",
        AttemptStatus.PENDING,
    )
    assert attempt.metadata["order_bid"] == order.order_bid
    assert attempt.metadata["attempt_bid"] == attempt.stripe_order_bid
    intent = client.v1.payment_intents.retrieve(intent_id)
    assert (intent.amount, intent.currency, intent.status) == (
        2500,
        "usd",
        "requires_payment_method",
    )
    assert intent.metadata["order_bid"] == order.order_bid
    assert intent.metadata["attempt_bid"] == attempt.stripe_order_bid

    paid = pay(client, intent_id)
    assert paid.status == "succeeded"

    inbox = event_settled(stripe_local, "payment_intent.succeeded", intent_id)
    assert_applied(inbox, stripe_local)
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert (order.status, order.paid_price, order.payment_channel) == (
        OrderStatus.PAID,
        Decimal("25.00"),
        "stripe",
    )
    assert attempt.status == AttemptStatus.PAID
    assert attempt.latest_charge_id == paid.latest_charge.id
    assert inbox.order_bid == order.order_bid
    assert intent_id not in inbox.body or paid.client_secret not in inbox.body
    assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).count() == 1
    # After applying it, dj-stripe syncs its own copy from localstripe (the event, then
    # the PaymentIntent it names, fetched again).
    assert synced(stripe_local, inbox.event_id).type == "payment_intent.succeeded"
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while not djstripe_models.PaymentIntent.objects.filter(id=intent_id).exists():
        assert time.monotonic() < deadline, "dj-stripe kept no copy of the PaymentIntent"
        time.sleep(POLL_SECONDS)
    copy = djstripe_models.PaymentIntent.objects.get(id=intent_id)
    assert (copy.stripe_data["status"], copy.stripe_data["amount"]) == ("succeeded", 2500)


def test_a_declined_card_fails_the_attempt_and_leaves_the_order_unpaid(
    webhooks_delivered: StripeLocal,
):
    stripe_local = webhooks_delivered
    client = stripe_local.client()
    started, attempt = started_order()

    with pytest.raises(stripe.CardError) as declined:
        pay(client, attempt.payment_intent_id, DECLINED_WHEN_CHARGED)
    assert declined.value.code == "card_declined"

    inbox = event_settled(stripe_local, "payment_intent.payment_failed", attempt.payment_intent_id)
    assert_applied(inbox, stripe_local)
    order = started.order
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert (order.status, order.paid_price) == (OrderStatus.UNPAID, Decimal("0.00"))
    assert attempt.status == AttemptStatus.FAILED
    assert (attempt.failure_code, attempt.failure_message) == (
        "card_declined",
        "Your card was declined.",
    )


def test_a_jpy_order_is_sent_in_yen_not_hundredths(stripe_channel: StripeLocal):
    client = stripe_channel.client()
    started, attempt = started_order("500", "jpy")

    assert (attempt.amount, attempt.currency) == (500, "jpy")
    intent = client.v1.payment_intents.retrieve(attempt.payment_intent_id)
    assert (intent.amount, intent.currency) == (500, "jpy")

    pay(client, attempt.payment_intent_id)
    order = payment_sync(order=started.order)
    assert (order.status, order.paid_price) == (OrderStatus.PAID, Decimal("500"))


# ---- refunds ----


def test_a_paid_order_is_refunded_in_part_then_in_full(stripe_channel: StripeLocal):
    client = stripe_channel.client()
    started, attempt = started_order("25.00", "usd")
    pay(client, attempt.payment_intent_id)
    order = payment_sync(order=started.order)
    assert order.status == OrderStatus.PAID

    partial = refund_request(order=order, amount=Decimal("10.00"), reason="changed their mind")
    assert partial.status == RefundStatus.SUCCEEDED, partial.failure_message
    order.refresh_from_db()
    assert (order.status, order.refunded_price) == (OrderStatus.PAID, Decimal("10.00"))

    rest = refund_request(order=order, reason="the rest")
    assert rest.status == RefundStatus.SUCCEEDED, rest.failure_message
    assert rest.amount == Decimal("15.00")
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.refunded_price == order.paid_price == Decimal("25.00")
    assert attempt.status == AttemptStatus.REFUNDED

    at_stripe = client.v1.refunds.list(params={"payment_intent": attempt.payment_intent_id})
    assert sorted((r.amount, r.metadata["refund_bid"]) for r in at_stripe.data) == sorted(
        [(1000, partial.refund_bid), (1500, rest.refund_bid)]
    )
    assert {partial.provider_refund_id, rest.provider_refund_id} == {r.id for r in at_stripe.data}
    charge = client.v1.charges.retrieve(attempt.latest_charge_id)
    assert (charge.amount_refunded, charge.refunded) == (2500, True)


# ---- bad deliveries ----


def test_a_forged_signature_is_refused_and_nothing_applied(stripe_channel: StripeLocal, client):
    stripe_client = stripe_channel.client()
    started, attempt = started_order()
    paid = pay(stripe_client, attempt.payment_intent_id)
    body, headers = signed_event(
        "whsec_" + "forger".ljust(32, "0"),
        "evt_forged0000000000",
        "payment_intent.succeeded",
        paid.to_dict(),
    )

    forged = client.post(
        reverse("webhook-stripe"),
        body,
        content_type="application/json",
        headers={"stripe-signature": headers["Stripe-Signature"]},
    )

    assert forged.status_code == 401
    order = started.order
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert (order.status, attempt.status) == (OrderStatus.UNPAID, AttemptStatus.PENDING)
    # Refused: only our bounded inbox records it, without an event id; dj-stripe never
    # sees it.
    [rejected] = WebhookEvent.objects.all()
    assert rejected.status == "rejected" and rejected.event_id is None
    assert not djstripe_models.Event.objects.exists()

    # The same event, signed with the endpoint's secret, pays the order: the signature
    # made the difference.
    body, headers = signed_event(
        stripe_channel.webhook_secret,
        "evt_forged0000000000",
        "payment_intent.succeeded",
        paid.to_dict(),
    )
    genuine = client.post(
        reverse("webhook-stripe"),
        body,
        content_type="application/json",
        headers={"stripe-signature": headers["Stripe-Signature"]},
    )
    assert genuine.status_code == 200, genuine.content
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


# ---- without webhooks ----


def test_a_payment_whose_webhook_never_comes_is_settled_by_sync_and_reconciliation(
    stripe_channel: StripeLocal,
):
    client = stripe_channel.client()
    synced, synced_attempt = started_order()
    reconciled, reconciled_attempt = started_order()
    pay(client, synced_attempt.payment_intent_id)
    pay(client, reconciled_attempt.payment_intent_id)

    order = payment_sync(order=synced.order)

    assert (order.status, order.paid_price) == (OrderStatus.PAID, Decimal("25.00"))
    synced_attempt.refresh_from_db()
    assert synced_attempt.status == AttemptStatus.PAID
    reconciled.order.refresh_from_db()
    assert reconciled.order.status == OrderStatus.UNPAID

    StripeOrder.objects.filter(pk=reconciled_attempt.pk).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    report = payments_reconcile(older_than_seconds=300)

    assert report.errors == []
    assert (report.checked, report.settled) == (1, 1)
    reconciled.order.refresh_from_db()
    reconciled_attempt.refresh_from_db()
    assert (reconciled.order.status, reconciled.order.paid_price) == (
        OrderStatus.PAID,
        Decimal("25.00"),
    )
    assert reconciled_attempt.status == AttemptStatus.PAID
    assert not WebhookEvent.objects.exists()


# ---- closing ----


def test_closing_cancels_the_payment_intent_so_it_can_no_longer_be_paid(
    stripe_channel: StripeLocal,
):
    client = stripe_channel.client()
    _, attempt = started_order()
    provider = registry.get_provider("stripe")

    state = provider.close_payment(attempt)

    assert (state.state, state.provider_payment_id) == (PAYMENT_CLOSED, attempt.payment_intent_id)
    assert client.v1.payment_intents.retrieve(attempt.payment_intent_id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        pay(client, attempt.payment_intent_id)
    assert provider.close_payment(attempt).state == PAYMENT_CLOSED  # again: nothing to do


def test_closing_a_paid_payment_intent_reports_the_payment(stripe_channel: StripeLocal):
    client = stripe_channel.client()
    _, attempt = started_order("25.00", "usd")
    pay(client, attempt.payment_intent_id)

    state = registry.get_provider("stripe").close_payment(attempt)

    assert (state.state, state.amount, state.currency) == (PAYMENT_SUCCEEDED, 2500, "usd")
    assert client.v1.payment_intents.retrieve(attempt.payment_intent_id).status == "succeeded"


# ---- concurrency and order of events (MariaDB) ----


def post(url: str, body: bytes, headers: dict) -> requests.Response:
    return requests.post(url, data=body, headers=headers, timeout=30)


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_twenty_deliveries_of_one_event_pay_the_order_once(
    stripe_channel: StripeLocal, live_server
):
    client = stripe_channel.client()
    started, attempt = started_order()
    paid = pay(client, attempt.payment_intent_id)
    url = live_server.url + reverse("webhook-stripe")
    body, headers = signed_event(
        stripe_channel.webhook_secret,
        "evt_repeated00000000",
        "payment_intent.succeeded",
        paid.to_dict(),
    )

    responses = run_together(lambda i: post(url, body, headers), count=20)

    failures = [
        r if isinstance(r, Exception) else (r.status_code, r.text[:300])
        for r in responses
        if isinstance(r, Exception) or not 200 <= r.status_code < 300
    ]
    assert not failures, failures
    order = started.order
    order.refresh_from_db()
    assert (order.status, order.paid_price) == (OrderStatus.PAID, Decimal("25.00"))
    assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).count() == 1
    [inbox] = WebhookEvent.objects.filter(channel="stripe", event_id="evt_repeated00000000")
    assert inbox.status == InboxStatus.APPLIED
    # dj-stripe synced the event once, after it was applied.
    synced(stripe_channel, "evt_repeated00000000")
    assert djstripe_models.Event.objects.filter(id="evt_repeated00000000").count() == 1


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_a_refund_reported_before_its_payment_is_applied_once_the_payment_is(
    stripe_channel: StripeLocal, live_server
):
    client = stripe_channel.client()
    started, attempt = started_order()
    paid = pay(client, attempt.payment_intent_id)
    refund = client.v1.refunds.create(
        params={"payment_intent": attempt.payment_intent_id, "amount": 2500}
    )
    charge = client.v1.charges.retrieve(paid.latest_charge.id)
    assert charge.refunded
    url = live_server.url + reverse("webhook-stripe")
    secret = stripe_channel.webhook_secret
    order = started.order

    early = post(
        url, *signed_event(secret, "evt_refunded00000000", "charge.refunded", charge.to_dict())
    )

    # Not applicable yet: kept failed in the inbox and, with no broker here, answered
    # 503 so that Stripe sends it again (a worker would retry it itself); dj-stripe
    # syncs nothing until it is applied.
    assert early.status_code == 503, early.text
    kept = WebhookEvent.objects.get(event_id="evt_refunded00000000")
    assert kept.status == InboxStatus.FAILED
    assert kept.last_error.startswith("not_applicable_yet"), kept.last_error
    assert not djstripe_models.Event.objects.filter(id="evt_refunded00000000").exists()
    order.refresh_from_db()
    assert (order.status, order.refunded_price) == (OrderStatus.UNPAID, Decimal("0.00"))
    assert not Refund.objects.exists()

    payment = post(
        url,
        *signed_event(secret, "evt_succeeded0000000", "payment_intent.succeeded", paid.to_dict()),
    )
    assert payment.status_code == 200, payment.text
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID

    retry = post(
        url, *signed_event(secret, "evt_refunded00000000", "charge.refunded", charge.to_dict())
    )

    assert retry.status_code == 200, retry.text
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.refunded_price == order.paid_price == Decimal("25.00")
    [recorded] = Refund.objects.filter(order=order)
    assert (recorded.provider_refund_id, recorded.status) == (refund.id, RefundStatus.SUCCEEDED)
    assert WebhookEvent.objects.get(event_id="evt_refunded00000000").status == InboxStatus.APPLIED
    assert (
        djstripe_models.Event.objects.filter(
            id__in=["evt_refunded00000000", "evt_succeeded0000000"]
        ).count()
        == 2
    )
