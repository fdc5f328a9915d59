"""The admin of products: edited, never deleted."""

from decimal import Decimal

import pytest
from django.urls import reverse

from orders.models import Product
from tests.factories import OrderFactory, ProductFactory
from tests.orders.admin.helpers import ORDERS, PRODUCTS, change_url

pytestmark = pytest.mark.django_db


def product_form(**overrides):
    data = {
        "product_bid": "a" * 32,
        "name": "Django course",
        "description": "",
        "price": "19.90",
        "currency": "cny",
        "active": "on",
    }
    data.update(overrides)
    return data


def test_product_can_be_added_and_its_currency_is_normalised(admin_client):
    response = admin_client.post(reverse("admin:orders_product_add"), product_form(currency="USD"))

    assert response.status_code == 302
    product = Product.objects.get(product_bid="a" * 32)
    assert (product.price, product.currency) == (Decimal("19.90"), "usd")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"currency": "xyz"}, "currency"), ({"currency": "jpy", "price": "19.90"}, "price")],
)
def test_product_with_unknown_currency_or_wrong_precision_is_refused(
    admin_client, overrides, field
):
    response = admin_client.post(reverse("admin:orders_product_add"), product_form(**overrides))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Product.objects.exists()


def test_product_is_edited_but_its_bid_stays(admin_client):
    product = ProductFactory(price=Decimal("10.00"))
    original_bid = product.product_bid

    response = admin_client.post(
        change_url(product), product_form(product_bid="b" * 32, price="12.50")
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.product_bid, product.price) == (original_bid, Decimal("12.50"))


def test_product_list_links_to_its_orders_and_cannot_delete(admin_client):
    product = ProductFactory()
    mine, other = OrderFactory(product_bid=product.product_bid), OrderFactory()

    listing = admin_client.get(PRODUCTS).content.decode()
    orders = admin_client.get(ORDERS, {"product_bid": product.product_bid}).content.decode()
    deleted = admin_client.post(
        reverse("admin:orders_product_delete", args=[product.pk]), {"post": "yes"}
    )

    assert f"?product_bid={product.product_bid}" in listing
    assert "CN¥19.90" in listing
    assert mine.order_bid in orders and other.order_bid not in orders
    assert deleted.status_code == 403
    assert Product.objects.filter(pk=product.pk).exists()
