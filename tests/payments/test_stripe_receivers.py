"""Stripe events applied through the inbox, fed the recorded payload of every handled
event type."""

import copy
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from orders.models import Order, OrderStatus, Refund, RefundStatus
from payments.models import AttemptStatus, InboxStatus, StripeOrder, WebhookEvent
from payments.providers.base import REFUND_SUCCEEDED, RefundState
from payments.providers.stripe import StripeProvider
from payments.stripe_webhooks import HANDLED_EVENTS, stripe_event_apply
from tests.factories import OrderFactory, StripeOrderFactory

PAYLOADS = Path(__file__).parent / "stripe_payloads"
ORDER_BID = "0rder000000000000000000recorded1"
PI_PAID = "pi_3RecordedSucceeded000001"

pytestmark = pytest.mark.django_db


def payload(name):
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def stripe_channel(settings):
    settings.PAYMENT_CHANNELS_ENABLED = ["stripe"]
    settings.DEFAULT_PAYMENT_CHANNEL = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_" + "r" * 24
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_recorded"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_recorded"


@pytest.fixture
def order():
    return OrderFactory(
        order_bid=ORDER_BID,
        status=OrderStatus.UNPAID,
        payment_channel="stripe",
        currency="usd",
        payable_price=Decimal("19.90"),
    )


def attempt_for(event_name, order, **fields):
    """The attempt row the recorded event names (ids and metadata as recorded)."""
    obj = payload(event_name)["data"]["object"]
    ids = {}
    if obj["id"].startswith("pi_"):
        ids["payment_intent_id"] = obj["id"]
    else:
        ids["checkout_session_id"] = obj["id"]
        ids["payment_intent_id"] = obj.get("payment_intent") or ""
    return StripeOrderFactory(
        stripe_order_bid=obj["metadata"]["attempt_bid"],
        order_bid=order.order_bid,
        amount=obj.get("amount") or obj["amount_total"],
        currency=obj["currency"],
        **{**ids, **fields},
    )


def reload(*rows):
    for row in rows:
        row.refresh_from_db()


def test_every_handled_event_type_has_a_recorded_payload():
    recorded = {payload(p.stem)["type"] for p in PAYLOADS.glob("*.json")}
    assert recorded == set(HANDLED_EVENTS)


@pytest.mark.parametrize(
    ("name", "order_status", "attempt_status"),
    [
        ("payment_intent.succeeded", OrderStatus.PAID, AttemptStatus.PAID),
        ("payment_intent.payment_failed", OrderStatus.UNPAID, AttemptStatus.FAILED),
        ("payment_intent.canceled", OrderStatus.UNPAID, AttemptStatus.CLOSED),
        ("checkout.session.completed", OrderStatus.PAID, AttemptStatus.PAID),
        ("checkout.session.completed.unpaid", OrderStatus.UNPAID, AttemptStatus.PENDING),
        ("checkout.session.async_payment_succeeded", OrderStatus.PAID, AttemptStatus.PAID),
        ("checkout.session.async_payment_failed", OrderStatus.UNPAID, AttemptStatus.FAILED),
        ("checkout.session.expired", OrderStatus.UNPAID, AttemptStatus.CLOSED),
    ],
)
def test_payment_events(order, name, order_status, attempt_status):
    attempt = attempt_for(name, order)
    outcome = stripe_event_apply(payload(name))
    assert outcome.http_status == 200, outcome
    reload(order, attempt)
    assert (order.status, attempt.status) == (order_status, attempt_status)
    if order_status == OrderStatus.PAID:
        assert order.paid_price == Decimal("19.90")
    if attempt_status == AttemptStatus.FAILED and name.startswith("payment_intent"):
        assert attempt.failure_code and attempt.failure_message
    row = WebhookEvent.objects.get(channel="stripe")
    assert row.event_id == payload(name)["id"] and row.status == InboxStatus.APPLIED

    again = stripe_event_apply(payload(name))
    assert again.code == "duplicate"
    assert WebhookEvent.objects.count() == 1


def test_a_paid_session_records_its_payment_intent(order):
    attempt = attempt_for("checkout.session.completed", order, payment_intent_id="")
    stripe_event_apply(payload("checkout.session.completed"))
    attempt.refresh_from_db()
    assert (
        attempt.payment_intent_id
        == payload("checkout.session.completed")["data"]["object"]["payment_intent"]
    )


@pytest.mark.parametrize(("field", "value"), [("amount", 1), ("currency", "eur")])
def test_amount_or_currency_other_than_the_attempt_is_refused(order, field, value):
    attempt = attempt_for("payment_intent.succeeded", order)
    event = copy.deepcopy(payload("payment_intent.succeeded"))
    event["data"]["object"][field] = value
    if field == "amount":
        event["data"]["object"]["amount_received"] = value
    outcome = stripe_event_apply(event)
    assert outcome.code == "amount_mismatch"
    reload(order, attempt)
    assert order.status == OrderStatus.UNPAID and attempt.status == AttemptStatus.PENDING
    assert WebhookEvent.objects.get().status == InboxStatus.REJECTED


def test_an_event_naming_nothing_of_ours_is_ignored(order):
    event = copy.deepcopy(payload("payment_intent.succeeded"))
    event["data"]["object"]["metadata"] = {}
    outcome = stripe_event_apply(event)
    assert (outcome.http_status, outcome.code) == (200, "not_ours")


def test_an_unknown_attempt_of_ours_is_kept_failed_to_be_retried(order):
    outcome = stripe_event_apply(payload("payment_intent.succeeded"))
    assert (outcome.http_status, outcome.code) == (503, "attempt_not_found")
    assert WebhookEvent.objects.get().status == InboxStatus.FAILED


@pytest.fixture
def paid(order):
    attempt = attempt_for("payment_intent.succeeded", order)
    stripe_event_apply(payload("payment_intent.succeeded"))
    reload(order, attempt)
    assert order.status == OrderStatus.PAID
    return order, attempt


def refund_row(order, attempt, name, **fields):
    obj = payload(name)["data"]["object"]
    return Refund.objects.create(
        refund_bid=obj["metadata"]["refund_bid"],
        order=order,
        payment_channel="stripe",
        attempt_bid=attempt.stripe_order_bid,
        amount=Decimal(obj["amount"]) / 100,
        currency="usd",
        reason="test",
        **fields,
    )


def test_refund_created_then_updated(paid):
    order, attempt = paid
    refund = refund_row(order, attempt, "refund.created")
    assert stripe_event_apply(payload("refund.created")).http_status == 200
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING
    assert refund.provider_refund_id == payload("refund.created")["data"]["object"]["id"]

    assert stripe_event_apply(payload("refund.updated")).http_status == 200
    reload(refund, order)
    assert refund.status == RefundStatus.SUCCEEDED
    assert order.refunded_price == Decimal("5.00") and order.status == OrderStatus.PAID


def test_refund_failed(paid):
    order, attempt = paid
    refund = refund_row(order, attempt, "refund.failed")
    assert stripe_event_apply(payload("refund.failed")).http_status == 200
    reload(refund, order)
    assert refund.status == RefundStatus.FAILED and refund.failure_code
    assert order.refunded_price == 0


@pytest.mark.parametrize("status", ["failed", "canceled"])
@pytest.mark.parametrize("event_type", ["refund.failed", "refund.updated"])
def test_a_refund_that_fails_after_succeeding_is_not_lost(paid, event_type, status):
    """Stripe reports a refund failed (or canceled) after it succeeded: the refund is
    failed, the order's refunded amount and status are restored, staff are told, and
    the inbox row says what was done."""
    from orders.models import Attention, AttentionKind, AttentionStatus

    order, attempt = paid
    refund = refund_row(order, attempt, "refund.failed")  # 14.90 of 19.90
    succeeded = copy.deepcopy(payload("refund.failed"))
    succeeded["id"] = "evt_refund_succeeded_first"
    succeeded["type"] = "refund.updated"
    succeeded["data"]["object"].update(status="succeeded", failure_reason=None)
    assert stripe_event_apply(succeeded).http_status == 200
    reload(refund, order)
    assert refund.status == RefundStatus.SUCCEEDED and order.refunded_price == Decimal("14.90")

    failed = copy.deepcopy(payload("refund.failed"))
    failed["type"] = event_type
    failed["data"]["object"]["status"] = status
    assert stripe_event_apply(failed).http_status == 200
    reload(refund, order)
    assert refund.status == RefundStatus.FAILED and refund.failure_code
    assert order.refunded_price == 0 and order.status == OrderStatus.PAID
    flagged = Attention.objects.get(kind=AttentionKind.REFUND_REVERSED)
    assert flagged.status == AttentionStatus.OPEN and flagged.subject_bid == refund.refund_bid
    row = WebhookEvent.objects.get(event_id=failed["id"])
    assert row.status == InboxStatus.APPLIED and "succeeded -> failed" in row.result


def test_a_full_refund_that_fails_after_succeeding_makes_the_order_paid_again(paid):
    order, attempt = paid
    refund = refund_row(order, attempt, "refund.failed")
    refund.amount = Decimal("19.90")
    refund.save()
    succeeded = copy.deepcopy(payload("refund.failed"))
    succeeded["id"] = "evt_refund_succeeded_full"
    succeeded["type"] = "refund.updated"
    succeeded["data"]["object"].update(status="succeeded", amount=1990, failure_reason=None)
    failed = copy.deepcopy(payload("refund.failed"))
    failed["data"]["object"]["amount"] = 1990
    stripe_event_apply(succeeded)
    reload(order, attempt)
    assert order.status == OrderStatus.REFUNDED and attempt.status == AttemptStatus.REFUNDED
    stripe_event_apply(failed)
    reload(order, attempt, refund)
    assert refund.status == RefundStatus.FAILED
    assert order.status == OrderStatus.PAID and order.refunded_price == 0
    assert attempt.status == AttemptStatus.PAID
    assert (
        order.events.filter(from_status=OrderStatus.REFUNDED, to_status=OrderStatus.PAID).count()
        == 1
    )


def test_charge_refunded_settles_every_refund_of_the_charge(
    paid, monkeypatch, django_capture_on_commit_callbacks
):
    order, attempt = paid
    first = refund_row(order, attempt, "refund.created")
    states = [
        RefundState(
            provider_refund_id="re_full_rest", provider_payment_id=PI_PAID,
            state=REFUND_SUCCEEDED, amount=1490, currency="usd",
        ),
        RefundState(
            provider_refund_id="re_3RecordedRefund00000001", provider_payment_id=PI_PAID,
            state=REFUND_SUCCEEDED, amount=500, currency="usd",
            refund_bid=first.refund_bid,
        ),
    ]  # fmt: skip
    asked = []
    monkeypatch.setattr(StripeProvider, "refunds_of", lambda self, pi: asked.append(pi) or states)
    with django_capture_on_commit_callbacks(execute=True):
        assert stripe_event_apply(payload("charge.refunded")).http_status == 200
    assert asked == [PI_PAID]
    reload(order, first)
    assert first.status == RefundStatus.SUCCEEDED
    other = Refund.objects.get(provider_refund_id="re_full_rest")
    assert other.reason == "made at the provider" and other.status == RefundStatus.SUCCEEDED
    assert order.status == OrderStatus.REFUNDED and order.refunded_price == Decimal("19.90")
    assert StripeOrder.objects.get(pk=attempt.pk).status == AttemptStatus.REFUNDED
    assert Order.objects.get(pk=order.pk).refundable_price == 0


def test_charge_refunded_of_a_payment_not_ours_is_acknowledged(order, monkeypatch):
    monkeypatch.setattr(
        StripeProvider, "refunds_of", lambda self, pi: pytest.fail("must not be asked")
    )
    outcome = stripe_event_apply(payload("charge.refunded"))
    assert outcome.http_status == 200


def test_a_refund_without_a_payment_intent_is_recorded_not_retried(order):
    event = copy.deepcopy(payload("refund.created"))
    event["data"]["object"]["payment_intent"] = None
    event["data"]["object"]["charge"] = "ch_of_another_integration"
    outcome = stripe_event_apply(event)
    assert outcome.http_status < 500
    row = WebhookEvent.objects.get()
    assert row.status == InboxStatus.REJECTED and row.event_id is None


def test_an_event_before_its_attempt_is_kept_and_reconciled(order, settings):
    from orders import services

    event = payload("payment_intent.succeeded")
    assert stripe_event_apply(event).http_status == 503
    row = WebhookEvent.objects.get()
    assert (row.status, row.event_id) == (InboxStatus.FAILED, event["id"])

    # The attempt is recorded later; reconciliation applies the kept event.
    attempt = attempt_for("payment_intent.succeeded", order)
    WebhookEvent.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(hours=1))
    report = services.payments_reconcile(older_than_seconds=60)
    assert report.errors == []
    reload(order, attempt, row)
    assert row.status == InboxStatus.APPLIED
    assert order.status == OrderStatus.PAID and attempt.status == AttemptStatus.PAID


def test_a_live_event_is_refused_by_a_test_configuration(order):
    attempt = attempt_for("payment_intent.succeeded", order)
    event = copy.deepcopy(payload("payment_intent.succeeded"))
    event["livemode"] = True
    event["data"]["object"]["livemode"] = True
    outcome = stripe_event_apply(event)
    assert outcome.code == "webhook_livemode_mismatch" and outcome.http_status < 500
    reload(order, attempt)
    assert order.status == OrderStatus.UNPAID
    assert WebhookEvent.objects.get().status == InboxStatus.REJECTED


def test_the_client_secret_is_never_stored(order):
    attempt_for("payment_intent.succeeded", order)
    event = copy.deepcopy(payload("payment_intent.succeeded"))
    event["data"]["object"]["client_secret"] = "pi_secret_must_not_be_kept"
    stripe_event_apply(event)
    row = WebhookEvent.objects.get()
    assert "pi_secret_must_not_be_kept" not in row.body + json.dumps(row.payload)
