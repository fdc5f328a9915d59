"""A person buys a demo product with the sandbox channel, in the browser's steps."""

from decimal import Decimal

import pytest

from orders.models import Order, OrderStatus
from payments.models import InboxStatus, SandboxAttempt, WebhookEvent
from tests.factories import ProductFactory, UserFactory


@pytest.fixture
def sandbox_only(settings):
    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = []  # with DEBUG, the sandbox is the default


@pytest.mark.django_db
def test_buy_with_the_sandbox_and_find_it_in_the_admin(client, admin_client, sandbox_only):
    product = ProductFactory(name="Django in Production", price=Decimal("299.00"))
    user = UserFactory()
    client.force_login(user)
    page = client.get("/")
    assert b"Django in Production" in page.content and b"sandbox" in page.content

    response = client.post(f"/buy/{product.product_bid}/", {"channel": "sandbox"})
    assert response.status_code == 302 and response["Location"].startswith("/sandbox/pay/")
    confirm_page = client.get(response["Location"])
    assert b"29900 CNY" in confirm_page.content

    paid = client.post(response["Location"], {"action": "pay"}, follow=True)
    assert b'id="order-status">paid<' in paid.content
    order = Order.objects.get(user_bid=str(user.pk))
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("299.00")
    attempt = SandboxAttempt.objects.get(order_bid=order.order_bid)
    event = WebhookEvent.objects.get(channel="sandbox")
    assert event.status == InboxStatus.APPLIED

    order_page = admin_client.get(f"/admin/orders/order/{order.pk}/change/")
    assert order_page.status_code == 200
    for text in (order.order_bid, attempt.attempt_bid, "paid"):
        assert text.encode() in order_page.content
    inbox = admin_client.get(f"/admin/payments/webhookevent/?q={event.event_id}")
    assert event.event_id.encode() in inbox.content
    attempts = admin_client.get(f"/admin/payments/sandboxattempt/?q={attempt.attempt_bid}")
    assert attempts.status_code == 200 and attempt.attempt_bid.encode() in attempts.content


@pytest.mark.django_db
def test_sandbox_pages_are_gone_without_the_sandbox(client, settings):
    settings.DEBUG = False
    settings.PAYMENT_CHANNELS_ENABLED = ["pingxx"]
    assert client.get("/sandbox/pay/whatever/").status_code == 404
    assert (
        client.post("/webhooks/sandbox/", b"{}", content_type="application/json").status_code == 404
    )
