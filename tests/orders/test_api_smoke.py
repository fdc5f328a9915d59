"""The API end to end through the sandbox: the contract's main path."""

from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_buy_pay_and_see_the_order(sandbox_channel):
    product = ProductFactory(price=Decimal("19.90"))
    user = UserFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    products = APIClient().get("/api/products/")
    assert products.status_code == 200
    assert products.json()[0] == {
        "product_bid": product.product_bid, "name": product.name, "description": "",
        "price": "19.90", "currency": "cny", "price_display": "CN¥19.90", "active": True,
        "creator_bid": "",
    }  # fmt: skip
    # The display field follows the reader's language.
    in_chinese = APIClient().get("/api/products/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert in_chinese.json()[0]["price_display"] == "¥19.90"

    created = client.post("/api/orders/", {"product": product.product_bid}, format="json")
    assert created.status_code == 201, created.json()
    order = created.json()
    assert (order["status"], order["status_code"], order["payable_amount"]) == (
        "init",
        501,
        "19.90",
    )
    again = client.post("/api/orders/", {"product": product.product_bid}, format="json")
    assert again.status_code == 200 and again.json()["order_bid"] == order["order_bid"]

    paid = client.post(f"/api/orders/{order['order_bid']}/pay/", {}, format="json")
    assert paid.status_code == 201, paid.json()
    payment = paid.json()["payment"]
    assert (payment["payment_channel"], payment["amount"], payment["currency"]) == (
        "sandbox",
        "19.90",
        "cny",
    )
    assert payment["confirm_url"].startswith("/sandbox/pay/")

    listed = client.get("/api/orders/")
    assert [o["order_bid"] for o in listed.json()["results"]] == [order["order_bid"]]
    other = APIClient()
    other.force_authenticate(UserFactory())
    missing = other.get(f"/api/orders/{order['order_bid']}/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_errors_have_a_stable_shape(sandbox_channel):
    client = APIClient()
    assert client.post("/api/orders/", {}, format="json").json()["code"] in (
        "not_authenticated", "authentication_failed"
    )  # fmt: skip
    client.force_authenticate(UserFactory())
    invalid = client.post("/api/orders/", {}, format="json")
    assert invalid.status_code == 400
    assert set(invalid.json()) >= {"code", "message", "errors"}
    assert "product" in invalid.json()["errors"]
    unknown = client.post("/api/orders/", {"product": "nope"}, format="json")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "product_not_found")


def test_an_unknown_api_path_answers_json():
    response = APIClient().get("/api/nothing-here/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
