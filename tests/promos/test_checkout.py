"""The checkout pages with a coupon: the buyer enters a code, sees the lines, pays
what is left; a bad code is a message, not an error page."""

from decimal import Decimal

import pytest

from orders.models import Order, OrderStatus
from payments.models import SandboxAttempt
from tests.factories import ProductFactory, UserFactory
from tests.promos.helpers import campaign, shared

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox_channel")]


def test_a_buyer_enters_a_code_sees_the_lines_and_pays_what_is_left(client):
    product = ProductFactory(name="Django in Production", price=Decimal("299.00"))
    campaign(product.product_bid, percent="10", name="Launch week")
    shared(code="EXTRA5", fixed="5.00", stacks=True, name="Newsletter")
    user = UserFactory()
    client.force_login(user)
    assert b'name="coupon_code"' in client.get("/").content

    response = client.post(
        f"/buy/{product.product_bid}/", {"channel": "sandbox", "coupon_code": " EXTRA5 "}
    )
    assert response.status_code == 302 and response["Location"].startswith("/sandbox/pay/")
    attempt = SandboxAttempt.objects.get()
    assert attempt.amount == 26410
    paid = client.post(response["Location"], {"action": "pay"}, follow=True)
    assert b'id="order-status">paid<' in paid.content
    order = Order.objects.get(user_bid=str(user.pk))
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("264.10")

    page = client.get(f"/orders/{order.order_bid}/").content.decode()
    for text in (
        "List price",
        "CN¥299.00",
        "Launch week",
        "-CN¥29.90",
        "Newsletter (EXTRA5)",
        "-CN¥5.00",
    ):
        assert text in page
    assert "CN¥264.10" in page


def test_a_bad_code_is_a_message_and_no_order(client):
    product = ProductFactory(price=Decimal("10.00"))
    client.force_login(UserFactory())
    page = client.post(f"/buy/{product.product_bid}/", {"coupon_code": "NOSUCHCODE"}, follow=True)
    assert b"coupon_not_found" in page.content
    assert not Order.objects.exists()
