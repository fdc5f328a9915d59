"""Orders: one live order per user and product, and an order that can no longer be
paid has its attempts closed at the provider (cancel, expiry, a repriced product)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders import services
from orders.models import Order, OrderStatus
from payments.models import AttemptStatus, SandboxAttempt
from tests.factories import ProductFactory, UserFactory
from tests.orders.services.helpers import unclosable
from tests.sandbox import sandbox_confirm
from tests.threads import run_together

pytestmark = pytest.mark.usefixtures("sandbox_channel")


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_creates_give_one_live_order(settings):
    settings.API_THROTTLE_ORDERS = "1000/minute"
    product = ProductFactory(price=Decimal("19.90"))
    user = UserFactory()
    token = Token.objects.create(user=user).key

    def create(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.post("/api/orders/", {"product": product.product_bid}, format="json")
        return response.status_code, response.json().get("order_bid")

    results = run_together(create, 20)
    assert [r for r in results if isinstance(r, Exception)] == []
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 19 + [201], results
    assert len({bid for _, bid in results}) == 1
    assert Order.objects.filter(user_bid=str(user.pk), product_bid=product.product_bid).count() == 1


@pytest.mark.django_db
def test_a_repriced_product_times_out_the_old_order_and_closes_its_attempt(committed):
    product = ProductFactory(price=Decimal("19.90"))
    old, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=old).attempt
    product.price = Decimal("29.90")
    product.save()
    with committed():
        new, created = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    assert created and new.payable_price == Decimal("29.90")
    old.refresh_from_db()
    assert old.status == OrderStatus.TIMEOUT
    closed = SandboxAttempt.objects.get(attempt_bid=attempt.attempt_bid)
    assert closed.status == AttemptStatus.CLOSED
    assert closed.provider_state != "pending"  # the buyer can no longer pay it


@pytest.mark.django_db
def test_cancel_closes_the_attempt_so_it_cannot_be_paid(committed):
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    with committed():
        services.order_cancel(order=order)
    attempt = SandboxAttempt.objects.get(pk=attempt.pk)
    assert attempt.status == AttemptStatus.CLOSED and attempt.provider_state == "closed"
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


@pytest.mark.django_db
def test_expiry_closes_the_attempts(committed):
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(hours=1))
    with committed():
        assert services.orders_expire() == 1
    assert SandboxAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.CLOSED


@pytest.mark.django_db
def test_a_failed_close_is_retried_by_reconciliation(committed):
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    with unclosable(), committed():
        services.order_cancel(order=order)
    assert SandboxAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.PENDING
    assert "could not be closed" in " ".join(order.events.values_list("message", flat=True))
    SandboxAttempt.objects.filter(pk=attempt.pk).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    services.payments_reconcile(older_than_seconds=60)
    assert SandboxAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.CLOSED


@pytest.mark.django_db
def test_cancel_closes_a_declined_attempt_too(committed):
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    sandbox_confirm(attempt.attempt_bid, succeeded=False)  # declined: may be tried again
    assert SandboxAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.FAILED
    with committed():
        services.order_cancel(order=order)
    closed = SandboxAttempt.objects.get(pk=attempt.pk)
    assert closed.status == AttemptStatus.CLOSED and closed.provider_state == "closed"
