"""Reconciliation settles what a provider never reported."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from orders import services
from orders.models import OrderStatus, Refund, RefundStatus
from payments.models import AttemptStatus, SandboxAttempt
from payments.providers.base import ProviderUnavailable
from payments.providers.sandbox import SandboxProvider
from tests.factories import ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox_channel")]


def age(model, **filters):
    model.objects.filter(**filters).update(created_at=timezone.now() - timedelta(minutes=10))


def test_a_payment_nobody_reported_is_found_and_applied():
    product = ProductFactory(price=Decimal("10.00"))
    order, _ = services.order_create(user_bid="u", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    # The user paid, but the event never arrived.
    SandboxAttempt.objects.filter(attempt_bid=started.attempt.attempt_bid).update(
        provider_state="succeeded"
    )

    fresh = services.payments_reconcile(older_than_seconds=300)
    assert (fresh.checked, fresh.settled) == (0, 0)  # too recent to be chased

    age(SandboxAttempt, attempt_bid=started.attempt.attempt_bid)
    report = services.payments_reconcile(older_than_seconds=300)
    assert (report.checked, report.settled, report.errors) == (1, 1, [])
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    again = services.payments_reconcile(older_than_seconds=300)
    assert again.checked == 0


def test_a_refund_that_never_reached_the_provider_is_sent_once():
    product = ProductFactory(price=Decimal("10.00"))
    order, _ = services.order_create(user_bid="u", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    SandboxAttempt.objects.filter(attempt_bid=started.attempt.attempt_bid).update(
        provider_state="succeeded"
    )
    services.payment_sync(order=order)

    with (
        mock.patch.object(
            SandboxProvider, "refund", side_effect=ProviderUnavailable("down", channel="sandbox")
        ),
        pytest.raises(ProviderUnavailable),
    ):
        services.refund_request(order=order, reason="customer asked")
    refund = Refund.objects.get(order=order)
    assert refund.status == RefundStatus.PENDING

    age(Refund, pk=refund.pk)
    Refund.objects.filter(pk=refund.pk).update(submitted_at=timezone.now() - timedelta(minutes=10))
    report = services.payments_reconcile(older_than_seconds=300)
    assert report.settled == 1 and report.errors == []
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert order.status == OrderStatus.REFUNDED
    attempt = SandboxAttempt.objects.get(attempt_bid=started.attempt.attempt_bid)
    assert len(attempt.provider_refunds) == 1
    assert attempt.status == AttemptStatus.REFUNDED

    # A retry after the provider did refund (the answer was lost) finds it, no second one.
    services.refund_submit(
        refund=refund, provider_payment_id=attempt.provider_payment_id, retry=True
    )
    attempt.refresh_from_db()
    assert len(attempt.provider_refunds) == 1


def test_an_attempt_whose_provider_answer_was_never_recorded_is_closed():
    product = ProductFactory()
    order, _ = services.order_create(user_bid="u", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    # As if the process had stopped before recording the provider's answer.
    SandboxAttempt.objects.filter(attempt_bid=started.attempt.attempt_bid).update(payment_id=None)
    age(SandboxAttempt, attempt_bid=started.attempt.attempt_bid)
    report = services.payments_reconcile(older_than_seconds=300)
    assert (report.checked, report.settled) == (1, 1)
    attempt = SandboxAttempt.objects.get(attempt_bid=started.attempt.attempt_bid)
    assert attempt.status == AttemptStatus.CLOSED
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID


def test_a_declined_attempt_paid_later_on_the_same_payment_is_found():
    product = ProductFactory()
    order, _ = services.order_create(user_bid="u", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    SandboxAttempt.objects.filter(attempt_bid=started.attempt.attempt_bid).update(
        status=AttemptStatus.FAILED, provider_state="succeeded"
    )
    age(SandboxAttempt, attempt_bid=started.attempt.attempt_bid)
    report = services.payments_reconcile(older_than_seconds=300)
    assert (report.checked, report.settled) == (1, 1)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


def test_rows_that_never_settle_do_not_hold_newer_ones_back():
    product = ProductFactory()
    attempts = []
    for user in ("a", "b", "c"):
        order, _ = services.order_create(user_bid=user, product_bid=product.product_bid)
        attempts.append(services.payment_start(order=order).attempt)
    for attempt in attempts:
        age(SandboxAttempt, attempt_bid=attempt.attempt_bid)
    seen = []
    for _ in range(3):
        before = {a.attempt_bid: a.updated_at for a in SandboxAttempt.objects.all()}
        services.payments_reconcile(older_than_seconds=300, limit=1)
        after = {a.attempt_bid: a.updated_at for a in SandboxAttempt.objects.all()}
        seen += [bid for bid in before if after[bid] != before[bid]]
    assert sorted(seen) == sorted(a.attempt_bid for a in attempts)
