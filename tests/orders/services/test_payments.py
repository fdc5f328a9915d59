"""Payments: one purchase per user and product. A payment that still lands on a
second order of an owned product is refunded (or flagged, by
PAY_DUPLICATE_PAYMENT_POLICY); one on a dead order of a product not owned yet is
honoured."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest

from orders import services
from orders.models import (
    Attention,
    AttentionKind,
    AttentionStatus,
    Order,
    OrderStatus,
    Refund,
    RefundStatus,
)
from orders.services import payment_results
from payments import registry
from payments.models import AttemptStatus, SandboxAttempt
from payments.tasks import webhook_deliver
from tests.factories import ProductFactory
from tests.orders.services.helpers import SandboxProvider, unclosable
from tests.sandbox import sandbox_confirm
from tests.threads import run_together

pytestmark = pytest.mark.usefixtures("sandbox_channel")


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_two_payments_of_two_orders_at_once_keep_one_purchase():
    """Two dead orders of one product, both paid at the same moment (their closes
    failed): one pays the product, the other is refunded automatically."""
    product = ProductFactory(price=Decimal("10.00"))
    deliveries = []
    with unclosable():
        for _ in range(2):
            order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
            attempt = services.payment_start(order=order).attempt
            services.order_cancel(order=order)
            deliveries.append(
                registry.get_provider("sandbox").complete(attempt.attempt_bid, succeeded=True)
            )
    results = run_together(
        lambda i: webhook_deliver(
            channel="sandbox", body=deliveries[i % 2][0], headers=deliveries[i % 2][1]
        ),
        20,
    )
    assert all(r.http_status == 200 for r in results), results
    orders = Order.objects.filter(user_bid="buyer").order_by("id")
    assert sorted(o.status for o in orders) == [OrderStatus.PAID, OrderStatus.REFUNDED]
    refund = Refund.objects.get()
    assert refund.status == RefundStatus.SUCCEEDED and "duplicate purchase" in refund.reason


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_two_payments_that_meet_inside_the_payment_still_keep_one_purchase():
    """The same, with the two payments made to meet where each decides whether the user
    already owns the product: without the purchase lock both would pay."""
    import contextlib
    import threading

    product = ProductFactory(price=Decimal("10.00"))
    deliveries = []
    with unclosable():
        for _ in range(2):
            order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
            attempt = services.payment_start(order=order).attempt
            services.order_cancel(order=order)
            provider = registry.get_provider("sandbox")
            deliveries.append(provider.complete(attempt.attempt_bid, succeeded=True))
    meet = threading.Barrier(2, timeout=3)
    real = payment_results._order_paid
    paced_calls = []

    def paced(**kwargs):
        paced_calls.append(kwargs["order"].order_bid)
        # With the lock the other payment waits outside: no meeting, the wait times out.
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait()
        return real(**kwargs)

    with mock.patch.object(payment_results, "_order_paid", paced):
        results = run_together(
            lambda i: webhook_deliver(
                channel="sandbox", body=deliveries[i][0], headers=deliveries[i][1]
            ),
            2,
        )
    assert all(r.http_status == 200 for r in results), results
    statuses = sorted(o.status for o in Order.objects.filter(user_bid="buyer"))
    assert statuses == [OrderStatus.PAID, OrderStatus.REFUNDED]
    # Both payments went through the paced function: the patch is where it is looked up.
    assert len(paced_calls) == 2


@pytest.mark.django_db
def test_a_payment_on_a_second_order_of_an_owned_product_is_refunded(committed):
    product = ProductFactory(price=Decimal("19.90"))
    first, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    stale = services.payment_start(order=first).attempt
    with unclosable():
        services.order_cancel(order=first)
    second, created = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    assert created and second.pk != first.pk
    sandbox_confirm(services.payment_start(order=second).attempt.attempt_bid)

    with committed():  # the dead order's QR code, paid
        outcome, _, _ = sandbox_confirm(stale.attempt_bid)
    assert outcome.http_status == 200
    first.refresh_from_db()
    assert first.status == OrderStatus.REFUNDED
    assert first.paid_price == first.refunded_price == Decimal("19.90")
    refund = Refund.objects.get(order=first)
    assert refund.status == RefundStatus.SUCCEEDED
    assert f"already owned through order {second.order_bid}" in refund.reason
    messages = " ".join(first.events.values_list("message", flat=True))
    assert "refunded automatically" in messages and "late" in messages
    second.refresh_from_db()
    assert second.status == OrderStatus.PAID


@pytest.mark.django_db
def test_flag_policy_keeps_the_second_purchase_for_staff(settings, admin_client):
    settings.PAY_DUPLICATE_PAYMENT_POLICY = "flag"
    product = ProductFactory(price=Decimal("19.90"))
    first, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    stale = services.payment_start(order=first).attempt
    with unclosable():
        services.order_cancel(order=first)
    second, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    sandbox_confirm(services.payment_start(order=second).attempt.attempt_bid)
    sandbox_confirm(stale.attempt_bid)

    first.refresh_from_db()
    assert first.status == OrderStatus.PAID and not Refund.objects.exists()
    flagged = Attention.objects.get(kind=AttentionKind.DUPLICATE_PURCHASE)
    assert flagged.status == AttentionStatus.OPEN and flagged.order == first
    assert second.order_bid in flagged.reason
    listing = admin_client.get("/admin/orders/attention/?status__exact=open")
    assert listing.status_code == 200 and first.order_bid.encode() in listing.content
    dashboard = admin_client.get("/admin/orders/order/dashboard/")
    assert dashboard.context["flagged"] == 1


@pytest.mark.django_db
def test_a_late_payment_for_a_product_not_owned_is_honoured_and_cancels_the_live_order():
    product = ProductFactory(price=Decimal("19.90"))
    first, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    stale = services.payment_start(order=first).attempt
    with unclosable():
        services.order_cancel(order=first)
    live, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    sandbox_confirm(stale.attempt_bid)
    first.refresh_from_db()
    live.refresh_from_db()
    assert first.status == OrderStatus.PAID and not Refund.objects.exists()
    assert "late: the order was cancelled" in first.events.get(to_status=OrderStatus.PAID).message
    assert live.status == OrderStatus.CANCELLED


@pytest.mark.django_db
def test_an_order_cancelled_while_its_payment_starts_gets_no_payable_attempt():
    from orders.errors import OrderNotPayable

    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    real_start = SandboxProvider.start_payment

    def start_while_cancelled(self, request):
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
        return real_start(self, request)

    cancelled_meanwhile = mock.patch.object(SandboxProvider, "start_payment", start_while_cancelled)
    with cancelled_meanwhile, pytest.raises(OrderNotPayable):
        services.payment_start(order=order)
    attempt = SandboxAttempt.objects.get(order_bid=order.order_bid)
    assert attempt.status == AttemptStatus.CLOSED and attempt.provider_state == "closed"
