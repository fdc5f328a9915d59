"""The partner API as the platform's backend uses it: keys with and without scope, the
entitlement answer after pay, refund, grant and revoke, and products upserted."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from bridge.models import ApiKey
from orders import services
from orders.models import Order, OrderEvent, OrderStatus, Product
from tests.bridge.conftest import USER_BID
from tests.factories import OrderFactory, ProductFactory, StaffFactory
from tests.sandbox import paid_through_sandbox

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _channels(sandbox_channel):
    return sandbox_channel


def partner(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client


def owned(client, user_bid, product_bid) -> dict:
    answer = client.get("/api/entitlements/", {"user_bid": user_bid, "product_bid": product_bid})
    assert answer.status_code == 200, answer.json()
    return answer.json()


def test_keys_are_made_shown_once_stored_hashed_and_revoked():
    out, err = io.StringIO(), io.StringIO()
    call_command("api_key_create", "platform-backend", "--scopes", "entitlements", stdout=out,
                 stderr=err)  # fmt: skip
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("psk_") and len(key) > 40
    row = ApiKey.objects.get(name="platform-backend")
    assert row.scopes == ["entitlements"] and key not in (row.digest, row.prefix)
    assert key not in err.getvalue()
    ask = {"user_bid": USER_BID, "product_bid": "p1"}
    assert partner(key).get("/api/entitlements/", ask).status_code == 200
    with pytest.raises(CommandError, match="api_key_exists"):
        call_command("api_key_create", "platform-backend", "--scopes", "products")
    with pytest.raises(CommandError, match="scope_unknown"):
        call_command("api_key_create", "other", "--scopes", "everything")
    call_command("api_key_revoke", "platform-backend", stdout=io.StringIO())
    answer = partner(key).get("/api/entitlements/", ask)
    assert (answer.status_code, answer.json()["code"]) == (401, "authentication_failed")


def test_no_key_is_401_and_a_key_without_the_scope_403(partner_key):
    ask = {"user_bid": USER_BID, "product_bid": "p1"}
    answer = APIClient().get("/api/entitlements/", ask)
    assert (answer.status_code, answer.json()["code"]) == (401, "not_authenticated")
    assert answer.headers["WWW-Authenticate"].startswith("ApiKey")
    products_only = partner(partner_key("products", name="catalog"))
    for answer in (
        products_only.get("/api/entitlements/", ask),
        products_only.post("/api/entitlements/grant/", {**ask, "reason": "x"}, format="json"),
        products_only.post("/api/entitlements/revoke/", {**ask, "reason": "x"}, format="json"),
    ):
        assert (answer.status_code, answer.json()["code"]) == (403, "permission_denied")
    entitlements = partner(partner_key("entitlements"))
    body = {"name": "Course", "price": "9.90", "currency": "cny", "active": True}
    answer = entitlements.put("/api/products/p1/", body, format="json")
    assert (answer.status_code, answer.json()["code"]) == (403, "permission_denied")
    # A partner key is no user: it sees no orders.
    assert entitlements.get("/api/orders/").status_code in (401, 403)


def test_the_entitlement_follows_pay_partial_and_full_refund(partner_key):
    client = partner(partner_key("entitlements"))
    order = paid_through_sandbox(user_bid=USER_BID, price="100.00")
    answer = owned(client, USER_BID, order.product_bid)
    assert answer["owned"] is True and answer["order_bid"] == order.order_bid
    assert answer["since"] is not None
    staff = StaffFactory()
    services.refund_request(order=order, amount=Decimal("40.00"), reason="partly", actor=staff)
    assert owned(client, USER_BID, order.product_bid)["owned"] is True
    services.refund_request(order=order, amount=None, reason="the rest", actor=staff)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    answer = owned(client, USER_BID, order.product_bid)
    assert answer == {"user_bid": USER_BID, "product_bid": order.product_bid, "owned": False,
                      "order_bid": None, "since": None}  # fmt: skip


def test_grant_is_idempotent_and_revoke_ends_it(partner_key):
    client = partner(partner_key("entitlements"))
    product = ProductFactory(price=Decimal("299.00"))
    unpaid = OrderFactory(user_bid=USER_BID, product_bid=product.product_bid,
                          payable_price=product.price)  # fmt: skip
    body = {"user_bid": USER_BID, "product_bid": product.product_bid, "reason": "prize"}
    first = client.post("/api/entitlements/grant/", body, format="json")
    assert first.status_code == 201, first.json()
    granted = first.json()
    assert (granted["status"], granted["status_code"], granted["payment_channel"]) == (
        "paid",
        502,
        "grant",
    )
    assert (granted["paid_amount"], granted["user_bid"]) == ("0.00", USER_BID)
    order = Order.objects.get(order_bid=granted["order_bid"])
    paid = OrderEvent.objects.get(order=order, to_status=OrderStatus.PAID)
    assert paid.source == "partner:platform-backend" and "prize" in paid.message
    unpaid.refresh_from_db()
    assert unpaid.status == OrderStatus.CANCELLED  # the open order cannot be paid now
    again = client.post("/api/entitlements/grant/", body, format="json")
    assert (again.status_code, again.json()["order_bid"]) == (200, order.order_bid)
    assert owned(client, USER_BID, product.product_bid)["owned"] is True

    revoked = client.post("/api/entitlements/revoke/", {**body, "reason": "abuse"},
                          format="json")  # fmt: skip
    assert revoked.status_code == 200, revoked.json()
    assert (revoked.json()["status"], revoked.json()["status_code"]) == ("revoked", 507)
    order.refresh_from_db()
    assert order.status == 507 and order.status != OrderStatus.PAID  # what learning reads
    event = OrderEvent.objects.get(order=order, to_status=OrderStatus.REVOKED)
    assert event.source == "partner:platform-backend" and "abuse" in event.message
    assert owned(client, USER_BID, product.product_bid)["owned"] is False
    answer = client.post("/api/entitlements/revoke/", body, format="json")
    assert (answer.status_code, answer.json()["code"]) == (404, "entitlement_not_found")
    # Granted again after a revoke: a new grant.
    assert client.post("/api/entitlements/grant/", body, format="json").status_code == 201


def test_a_revoked_paid_order_keeps_its_money_refundable(partner_key):
    client = partner(partner_key("entitlements"))
    order = paid_through_sandbox(user_bid=USER_BID, price="50.00")
    body = {"user_bid": USER_BID, "product_bid": order.product_bid, "reason": "chargeback risk"}
    assert client.post("/api/entitlements/revoke/", body, format="json").status_code == 200
    services.refund_request(order=order, amount=None, reason="refund", actor=StaffFactory())
    order.refresh_from_db()
    assert (order.status, order.refunded_price) == (OrderStatus.REFUNDED, Decimal("50.00"))
    assert owned(client, USER_BID, order.product_bid)["owned"] is False


def test_a_batch_answer_is_one_query(partner_key):
    client = partner(partner_key("entitlements"))
    mine = [paid_through_sandbox(user_bid=USER_BID).product_bid for _ in range(3)]
    ask = {"user_bid": USER_BID, "product_bid": [*mine, "not-owned"]}
    client.get("/api/entitlements/", ask)
    with CaptureQueriesContext(connection) as queries:
        answer = client.get("/api/entitlements/", ask)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["owned"] for r in results] == [True, True, True, False]
    order_queries = [q for q in queries.captured_queries if "order_orders" in q["sql"]]
    assert len(order_queries) == 1


@pytest.mark.parametrize(
    "ask",
    [{"product_bid": "p"}, {"user_bid": USER_BID}, {"user_bid": "bad bid!", "product_bid": "p"},
     {"user_bid": USER_BID, "product_bid": ["p"] * 1 + ["q" * 37]}],
    ids=["no-user", "no-product", "bad-user", "long-product"],
)  # fmt: skip
def test_a_bad_question_is_400(partner_key, ask):
    answer = partner(partner_key("entitlements")).get("/api/entitlements/", ask)
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid")


def test_grant_refuses_what_is_not_clear(partner_key):
    client = partner(partner_key("entitlements"))
    product = ProductFactory()
    for body, status, code in [
        ({"user_bid": USER_BID, "product_bid": "nope", "reason": "x"}, 404, "product_not_found"),
        ({"user_bid": USER_BID, "product_bid": product.product_bid}, 400, "invalid"),
        ({"user_bid": 5, "product_bid": product.product_bid, "reason": "x"}, 400, "invalid"),
    ]:
        answer = client.post("/api/entitlements/grant/", body, format="json")
        assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert not Order.objects.exists()


def test_products_are_upserted_from_the_platform(partner_key):
    client = partner(partner_key("products", name="catalog"))
    body = {"name": "AI for all", "price": "299.00", "currency": "CNY", "active": True}
    made = client.put("/api/products/shifu-42/", body, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["product_bid"] == "shifu-42" and made.json()["currency"] == "cny"
    changed = client.put("/api/products/shifu-42/", {**body, "price": "199.00", "active": False},
                         format="json")  # fmt: skip
    assert changed.status_code == 200
    product = Product.objects.get(product_bid="shifu-42")
    assert (product.price, product.active) == (Decimal("199.00"), False)
    refused = client.put("/api/products/shifu-43/", {**body, "price": "9.99", "currency": "jpy"},
                         format="json")  # fmt: skip
    assert refused.status_code == 400
    missing = client.put("/api/products/shifu-44/", {"name": "x"}, format="json")
    assert missing.status_code == 400 and not Product.objects.filter(product_bid="shifu-44")
    # Staff with both permissions may upsert too; anonymous may not.
    anonymous = APIClient().put("/api/products/shifu-45/", body, format="json")
    assert anonymous.status_code == 401
