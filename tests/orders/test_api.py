"""The public API of issue 5, endpoint by endpoint: who may do what, and every error code.

Runs on SQLite and on MariaDB (both passes); nothing here needs row locks.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.management import call_command
from django.db import OperationalError, connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from orders import selectors
from orders.models import Order, OrderStatus, Product, Refund, RefundStatus
from payments.models import PingxxOrder, SandboxAttempt
from tests.factories import (
    OrderFactory,
    ProductFactory,
    RefundFactory,
    UserFactory,
)
from tests.payments.conftest import (  # noqa: F401  (fixtures)
    pingxx_double,
    pingxx_keys,
    pingxx_settings,
)
from tests.sandbox import paid_through_sandbox

pytestmark = pytest.mark.django_db

ORDER_FIELDS = {
    "order_bid", "product", "status", "status_code", "payment_channel", "currency",
    "payable_amount", "paid_amount", "refunded_amount", "refundable_amount", "created_at",
    "updated_at", "paid_at",
}  # fmt: skip
REFUND_FIELDS = {
    "refund_bid", "order", "amount", "currency", "status", "payment_channel", "reason",
    "created_at",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def channels(settings):
    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = ["sandbox"]
    settings.DEFAULT_PAYMENT_CHANNEL = "sandbox"
    return settings


@pytest.fixture
def with_pingxx(channels, pingxx_settings):  # noqa: F811
    pingxx_settings.PAYMENT_CHANNELS_ENABLED = ["sandbox", "pingxx"]
    return pingxx_settings


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def user_with(*codenames: str, staff: bool = True):
    user = UserFactory(is_staff=staff)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def own_order(user, **kwargs) -> Order:
    return OrderFactory(user_bid=selectors.user_bid_for(user), **kwargs)


def assert_error(response, status: int, code: str, *, channel: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert {"code", "message", "errors"} <= set(body), body
    assert body["code"] == code, body
    assert isinstance(body["errors"], dict) and isinstance(body["message"], str)
    if channel:
        assert body["payment_channel"] == channel, body
    return body


# ---- authentication ----


def test_token_made_by_the_management_command_authenticates():
    user = UserFactory(username="tokenuser")
    out = io.StringIO()
    call_command("drf_create_token", "tokenuser", stdout=out)
    key = Token.objects.get(user=user).key
    assert key in out.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/orders/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token not-a-key")
    assert_error(client.get("/api/orders/"), 401, "authentication_failed")


def test_session_authenticates():
    user = UserFactory()
    own_order(user)
    client = APIClient()
    client.force_login(user)
    response = client.get("/api/orders/")
    assert response.status_code == 200 and len(response.json()["results"]) == 1


def test_anonymous_may_only_read_products():
    product = ProductFactory()
    anonymous = APIClient()
    assert anonymous.get("/api/products/").status_code == 200
    assert anonymous.get(f"/api/products/{product.product_bid}/").status_code == 200
    assert_error(
        anonymous.post("/api/products/", {"name": "x", "price": "1.00"}, format="json"),
        401,
        "not_authenticated",
    )
    for path in ("/api/orders/", "/api/refunds/"):
        response = anonymous.get(path)
        assert_error(response, 401, "not_authenticated")
        assert response.headers["WWW-Authenticate"].startswith("Token")
    assert_error(
        anonymous.post("/api/orders/", {"product": product.product_bid}, format="json"),
        401,
        "not_authenticated",
    )
    order = OrderFactory()
    assert_error(anonymous.post(f"/api/orders/{order.order_bid}/pay/"), 401, "not_authenticated")


# ---- products ----


def test_product_list_shows_active_products_only():
    on_sale = ProductFactory(name="A course", price=Decimal("19.90"), currency="cny")
    ProductFactory(name="B withdrawn", active=False)
    listed = APIClient().get("/api/products/").json()
    assert [p["product_bid"] for p in listed] == [on_sale.product_bid]
    assert {"product_bid", "name", "price", "currency"} <= set(listed[0])
    assert (listed[0]["name"], listed[0]["price"], listed[0]["currency"]) == (
        "A course",
        "19.90",
        "cny",
    )


def test_staff_with_the_permission_add_and_change_products():
    client = client_for(user_with("add_product", "change_product"))
    created = client.post(
        "/api/products/", {"name": "New", "price": "9.50", "currency": "CNY"}, format="json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["price"], body["currency"]) == ("New", "9.50", "cny")
    product = Product.objects.get(product_bid=body["product_bid"])
    assert product.price == Decimal("9.50")

    changed = client.patch(
        f"/api/products/{product.product_bid}/", {"price": "12.00"}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    product.refresh_from_db()
    assert product.price == Decimal("12.00") and changed.json()["price"] == "12.00"


def test_product_writes_need_the_permission():
    product = ProductFactory()
    client = client_for(user_with(staff=True))
    assert_error(
        client.post("/api/products/", {"name": "x", "price": "1.00"}, format="json"),
        403,
        "permission_denied",
    )
    assert_error(
        client.patch(f"/api/products/{product.product_bid}/", {"price": "1"}, format="json"),
        403,
        "permission_denied",
    )
    product.refresh_from_db()
    assert product.price == Decimal("19.90")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x", "price": "1.00", "currency": "xxx"}, "currency"),
        ({"name": "x", "price": "1.5", "currency": "jpy"}, "price"),
        ({"name": "x", "price": "1.999", "currency": "cny"}, "price"),
        ({"name": "x", "currency": "cny"}, "price"),
    ],
)
def test_invalid_products_are_refused_with_field_errors(payload, field):
    client = client_for(user_with("add_product"))
    body = assert_error(client.post("/api/products/", payload, format="json"), 400, "invalid")
    assert field in body["errors"], body
    assert not Product.objects.exists()


# ---- orders ----


def test_create_an_order_then_reuse_it():
    product = ProductFactory(price=Decimal("19.90"))
    client = client_for(UserFactory())
    created = client.post("/api/orders/", {"product": product.product_bid}, format="json")
    assert created.status_code == 201, created.json()
    order = created.json()
    assert set(order) >= ORDER_FIELDS
    assert (order["product"], order["status"], order["status_code"]) == (
        product.product_bid,
        "init",
        OrderStatus.INIT.value,
    )
    assert (order["payment_channel"], order["currency"], order["payable_amount"]) == (
        "sandbox",
        "cny",
        "19.90",
    )
    assert (order["paid_amount"], order["refunded_amount"], order["refundable_amount"]) == (
        "0.00",
        "0.00",
        "0.00",
    )
    assert order["paid_at"] is None and order["created_at"] and order["updated_at"]
    again = client.post(
        "/api/orders/",
        {"product": product.product_bid, "payment_channel": "sandbox"},
        format="json",
    )
    assert again.status_code == 200 and again.json()["order_bid"] == order["order_bid"]
    assert Order.objects.count() == 1


def test_an_unknown_channel_or_product_is_refused():
    product = ProductFactory()
    user = UserFactory()
    client = client_for(user)
    response = client.post(
        "/api/orders/", {"product": product.product_bid, "payment_channel": "nope"}, format="json"
    )
    assert_error(response, 400, "payment_channel_not_enabled", channel="nope")
    order = own_order(user, product_bid=product.product_bid)
    disabled = client.post(
        f"/api/orders/{order.order_bid}/pay/", {"method": "stripe:checkout_session"}, format="json"
    )
    assert_error(disabled, 400, "payment_channel_not_enabled", channel="stripe")
    assert_error(client.post("/api/orders/", {"product": "nope"}, format="json"), 404,
                 "product_not_found")  # fmt: skip


def test_an_already_paid_product_is_a_409():
    user = UserFactory()
    product = ProductFactory()
    own_order(user, product_bid=product.product_bid, paid=True)
    response = client_for(user).post("/api/orders/", {"product": product.product_bid},
                                     format="json")  # fmt: skip
    assert_error(response, 409, "already_purchased")


def test_users_list_their_own_orders_staff_all():
    user, other = UserFactory(), UserFactory()
    mine = own_order(user)
    theirs = own_order(other)
    listed = client_for(user).get("/api/orders/").json()["results"]
    assert [o["order_bid"] for o in listed] == [mine.order_bid]
    assert set(listed[0]) >= ORDER_FIELDS
    staff = client_for(UserFactory(is_staff=True)).get("/api/orders/").json()["results"]
    assert {o["order_bid"] for o in staff} == {mine.order_bid, theirs.order_bid}


def test_another_users_order_is_a_404():
    user = UserFactory()
    theirs = own_order(UserFactory())
    client = client_for(user)
    assert_error(client.get(f"/api/orders/{theirs.order_bid}/"), 404, "not_found")
    for action in ("pay", "sync", "cancel"):
        assert_error(
            client.post(f"/api/orders/{theirs.order_bid}/{action}/", {}, format="json"),
            404,
            "not_found",
        )
    theirs.refresh_from_db()
    assert theirs.status == OrderStatus.INIT
    mine = client_for(UserFactory(is_staff=True)).get(f"/api/orders/{theirs.order_bid}/")
    assert mine.status_code == 200 and set(mine.json()) >= ORDER_FIELDS


def test_order_filters():
    user = UserFactory()
    client = client_for(user)
    paid = own_order(user, paid=True, payment_channel="stripe")
    unpaid = own_order(user, status=OrderStatus.UNPAID, payment_channel="pingxx")
    old = own_order(user, status=OrderStatus.CANCELLED, payment_channel="pingxx")
    long_ago = timezone.now() - timedelta(days=30)
    Order.objects.filter(pk=old.pk).update(created_at=long_ago)

    def bids(**params):
        response = client.get("/api/orders/", params)
        assert response.status_code == 200, response.json()
        return {o["order_bid"] for o in response.json()["results"]}

    assert bids(status="paid") == {paid.order_bid}
    assert bids(status="unpaid") == {unpaid.order_bid}
    assert bids(payment_channel="pingxx") == {unpaid.order_bid, old.order_bid}
    week_ago = (timezone.now() - timedelta(days=7)).isoformat()
    assert bids(created_after=week_ago) == {paid.order_bid, unpaid.order_bid}
    assert bids(created_before=week_ago) == {old.order_bid}
    assert_error(client.get("/api/orders/", {"status": "bogus"}), 400, "invalid")


def test_order_list_cursor_pagination():
    user = UserFactory()
    made = [own_order(user).order_bid for _ in range(5)]
    client = client_for(user)
    first = client.get("/api/orders/", {"page_size": 2}).json()
    assert [o["order_bid"] for o in first["results"]] == made[::-1][:2]
    assert first["previous"] is None and first["next"]
    seen = [o["order_bid"] for o in first["results"]]
    page = first
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [o["order_bid"] for o in page["results"]]
    assert seen == made[::-1]


# ---- pay ----


def test_pay_through_the_sandbox():
    user = UserFactory()
    product = ProductFactory()
    client = client_for(user)
    order = client.post("/api/orders/", {"product": product.product_bid}, format="json").json()
    paid = client.post(f"/api/orders/{order['order_bid']}/pay/", {}, format="json")
    assert paid.status_code == 201, paid.json()
    body = paid.json()
    assert body["order"]["status"] == "unpaid" and set(body["order"]) >= ORDER_FIELDS
    payment = body["payment"]
    assert (payment["payment_channel"], payment["method"], payment["amount"]) == (
        "sandbox",
        "confirm_page",
        "19.90",
    )
    assert payment["currency"] == "cny" and payment["attempt_bid"]
    assert payment["confirm_url"] == f"/sandbox/pay/{payment['attempt_bid']}/"
    assert SandboxAttempt.objects.filter(attempt_bid=payment["attempt_bid"]).exists()


@pytest.mark.parametrize(
    "payload",
    [{"payment_channel": "pingxx", "method": "wx_pub_qr"}, {"method": "pingxx:wx_pub_qr"}],
)
def test_pay_through_pingxx(with_pingxx, pingxx_double, payload):  # noqa: F811
    user = UserFactory()
    order = own_order(user, product_bid=ProductFactory().product_bid, payment_channel="sandbox")
    response = client_for(user).post(f"/api/orders/{order.order_bid}/pay/", payload,
                                     format="json")  # fmt: skip
    assert response.status_code == 201, response.json()
    body = response.json()
    payment = body["payment"]
    assert (payment["payment_channel"], payment["method"]) == ("pingxx", "wx_pub_qr")
    assert payment["credential"] and payment["qr_url"].startswith("weixin://")
    assert (payment["amount"], payment["currency"]) == ("19.90", "cny")
    assert (body["order"]["payment_channel"], body["order"]["status"]) == ("pingxx", "unpaid")
    attempt = PingxxOrder.objects.get(transaction_no=payment["attempt_bid"])
    assert pingxx_double.charges[attempt.charge_id]["channel"] == "wx_pub_qr"


def test_a_method_without_its_extra_is_a_400(with_pingxx, pingxx_double):  # noqa: F811
    user = UserFactory()
    order = own_order(user, product_bid=ProductFactory().product_bid)
    response = client_for(user).post(
        f"/api/orders/{order.order_bid}/pay/", {"method": "pingxx:wx_pub"}, format="json"
    )
    assert_error(response, 400, "payment_method_invalid", channel="pingxx")
    assert pingxx_double.charges == {}
    unknown = client_for(user).post(
        f"/api/orders/{order.order_bid}/pay/", {"method": "pingxx:bitcoin"}, format="json"
    )
    assert_error(unknown, 400, "payment_method_invalid", channel="pingxx")


@pytest.mark.parametrize("status", [502, 500])
def test_a_provider_outage_is_a_5xx_naming_the_channel(with_pingxx, pingxx_double, status):  # noqa: F811
    user = UserFactory()
    order = own_order(user, product_bid=ProductFactory().product_bid)
    pingxx_double.fail_next(status, times=5)
    response = client_for(user).post(
        f"/api/orders/{order.order_bid}/pay/", {"payment_channel": "pingxx"}, format="json"
    )
    assert response.status_code in (502, 503), response.content
    assert_error(response, response.status_code, "provider_unavailable", channel="pingxx")
    assert "Traceback" not in response.content.decode()


def test_paying_a_paid_order_is_a_409():
    user = UserFactory()
    order = own_order(user, paid=True, payment_channel="sandbox")
    response = client_for(user).post(f"/api/orders/{order.order_bid}/pay/", {}, format="json")
    assert_error(response, 409, "order_not_payable")


def test_paying_an_expired_order_is_a_409(settings):
    user = UserFactory()
    order = own_order(user, product_bid=ProductFactory().product_bid, payment_channel="sandbox")
    long_ago = timezone.now() - timedelta(seconds=settings.PAY_ORDER_EXPIRE_SECONDS + 60)
    Order.objects.filter(pk=order.pk).update(created_at=long_ago)
    response = client_for(user).post(f"/api/orders/{order.order_bid}/pay/", {}, format="json")
    assert_error(response, 409, "order_expired")
    order.refresh_from_db()
    assert order.status == OrderStatus.TIMEOUT


def test_pay_input_is_validated():
    user = UserFactory()
    order = own_order(user, product_bid=ProductFactory().product_bid, payment_channel="sandbox")
    response = client_for(user).post(
        f"/api/orders/{order.order_bid}/pay/", {"success_url": "not a url"}, format="json"
    )
    assert "success_url" in assert_error(response, 400, "invalid")["errors"]


# ---- sync and cancel ----


def test_sync_returns_the_order_paid_at_the_provider(with_pingxx, pingxx_double):  # noqa: F811
    user = UserFactory()
    order = own_order(user, product_bid=ProductFactory().product_bid)
    client = client_for(user)
    started = client.post(
        f"/api/orders/{order.order_bid}/pay/", {"payment_channel": "pingxx"}, format="json"
    ).json()
    attempt = PingxxOrder.objects.get(transaction_no=started["payment"]["attempt_bid"])
    unpaid = client.post(f"/api/orders/{order.order_bid}/sync/")
    assert unpaid.status_code == 200 and unpaid.json()["status"] == "unpaid"
    pingxx_double.pay(attempt.charge_id)
    synced = client.post(f"/api/orders/{order.order_bid}/sync/")
    assert synced.status_code == 200, synced.json()
    body = synced.json()
    assert set(body) >= ORDER_FIELDS
    assert (body["status"], body["paid_amount"], body["refundable_amount"]) == (
        "paid",
        "19.90",
        "19.90",
    )
    assert body["paid_at"] is not None


def test_sync_during_an_outage_names_the_channel(with_pingxx, pingxx_double):  # noqa: F811
    user = UserFactory()
    order = own_order(user, product_bid=ProductFactory().product_bid)
    client = client_for(user)
    client.post(f"/api/orders/{order.order_bid}/pay/", {"payment_channel": "pingxx"},
                format="json")  # fmt: skip
    pingxx_double.fail_next(502, times=5)
    response = client.post(f"/api/orders/{order.order_bid}/sync/")
    assert response.status_code in (502, 503)
    assert_error(response, response.status_code, "provider_unavailable", channel="pingxx")


def test_cancel_an_unpaid_order_not_a_paid_one():
    user = UserFactory()
    client = client_for(user)
    unpaid = own_order(user, status=OrderStatus.UNPAID, payment_channel="sandbox")
    cancelled = client.post(f"/api/orders/{unpaid.order_bid}/cancel/")
    assert cancelled.status_code == 200, cancelled.json()
    assert cancelled.json()["status"] == "cancelled"
    unpaid.refresh_from_db()
    assert unpaid.status == OrderStatus.CANCELLED

    paid = own_order(user, paid=True, payment_channel="sandbox")
    assert_error(client.post(f"/api/orders/{paid.order_bid}/cancel/"), 409, "order_not_payable")
    paid.refresh_from_db()
    assert paid.status == OrderStatus.PAID


# ---- refunds ----


def test_staff_with_the_permission_refund_an_order():
    order = paid_through_sandbox(user_bid=selectors.user_bid_for(UserFactory()))
    client = client_for(user_with("add_refund"))
    response = client.post(
        "/api/refunds/",
        {"order": order.order_bid, "amount": "5.00", "reason": "asked"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    refund = response.json()
    assert set(refund) >= REFUND_FIELDS
    assert (refund["order"], refund["amount"], refund["currency"]) == (
        order.order_bid,
        "5.00",
        "cny",
    )
    assert (refund["payment_channel"], refund["reason"]) == ("sandbox", "asked")
    assert refund["status"] in {"pending", "succeeded", "failed"}
    assert Refund.objects.get(refund_bid=refund["refund_bid"]).amount == Decimal("5.00")

    rest = client.post("/api/refunds/", {"order": order.order_bid, "reason": "all the rest"},
                       format="json")  # fmt: skip
    assert rest.status_code == 201 and rest.json()["amount"] == "14.90"


def test_refunding_more_than_refundable_is_a_400():
    order = paid_through_sandbox(user_bid=selectors.user_bid_for(UserFactory()), price="10.00")
    response = client_for(user_with("add_refund")).post(
        "/api/refunds/",
        {"order": order.order_bid, "amount": "10.01", "reason": "too much"},
        format="json",
    )
    body = assert_error(response, 400, "refund_exceeds_refundable")
    assert Decimal(body["details"]["refundable"]) == Decimal("10.00")
    assert not Refund.objects.exists()


def test_refund_input_and_permission():
    order = paid_through_sandbox(user_bid=selectors.user_bid_for(UserFactory()))
    no_permission = client_for(UserFactory(is_staff=True))
    payload = {"order": order.order_bid, "reason": "asked"}
    assert_error(no_permission.post("/api/refunds/", payload, format="json"), 403,
                 "permission_denied")  # fmt: skip
    client = client_for(user_with("add_refund"))
    missing = client.post("/api/refunds/", {"order": order.order_bid}, format="json")
    assert "reason" in assert_error(missing, 400, "invalid")["errors"]
    blank = client.post("/api/refunds/", {"order": order.order_bid, "reason": " "},
                        format="json")  # fmt: skip
    assert blank.status_code == 400 and blank.json()["code"] in ("invalid", "reason_required")
    for amount in ("0", "-1.00", "1.001"):
        bad = client.post(
            "/api/refunds/",
            {"order": order.order_bid, "amount": amount, "reason": "x"},
            format="json",
        )
        assert "amount" in assert_error(bad, 400, "invalid")["errors"]
    unknown = client.post("/api/refunds/", {"order": "nope", "reason": "x"}, format="json")
    assert_error(unknown, 404, "not_found")
    unpaid = OrderFactory(status=OrderStatus.UNPAID)
    assert_error(client.post("/api/refunds/", {"order": unpaid.order_bid, "reason": "x"},
                             format="json"), 409, "order_not_refundable")  # fmt: skip
    assert not Refund.objects.exists()


def test_users_see_only_refunds_of_their_own_orders():
    user = UserFactory()
    mine = RefundFactory(order=own_order(user, paid=True))
    theirs = RefundFactory()
    client = client_for(user)
    listed = client.get("/api/refunds/")
    assert listed.status_code == 200
    assert [r["refund_bid"] for r in listed.json()["results"]] == [mine.refund_bid]
    assert set(listed.json()["results"][0]) >= REFUND_FIELDS
    assert client.get(f"/api/refunds/{mine.refund_bid}/").json()["order"] == mine.order.order_bid
    assert_error(client.get(f"/api/refunds/{theirs.refund_bid}/"), 404, "not_found")
    staff = client_for(UserFactory(is_staff=True)).get("/api/refunds/").json()["results"]
    assert {r["refund_bid"] for r in staff} == {mine.refund_bid, theirs.refund_bid}


# ---- error shape and request bodies ----


def test_malformed_json_is_a_400():
    response = client_for(UserFactory()).post(
        "/api/orders/", b'{"product": ', content_type="application/json"
    )
    assert_error(response, 400, "malformed_request")


def test_a_body_over_16_kib_is_a_413():
    product = ProductFactory()
    body = json.dumps({"product": product.product_bid, "padding": "x" * (16 * 1024)})
    response = client_for(UserFactory()).post("/api/orders/", body, content_type="application/json")
    assert_error(response, 413, "request_too_large")
    assert not Order.objects.exists()


def test_a_wrong_content_type_is_a_415():
    product = ProductFactory()
    response = client_for(UserFactory()).post(
        "/api/orders/", f"product={product.product_bid}",
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    assert_error(response, 415, "unsupported_media_type")
    assert not Order.objects.exists()


def test_a_bare_validation_error_still_has_a_dict_of_errors():
    from rest_framework.exceptions import ValidationError

    from payments_project.errors import api_exception_handler

    response = api_exception_handler(ValidationError("not like that"), {})
    assert response.status_code == 400
    assert response.data["errors"] == {"non_field_errors": ["not like that"]}


def test_an_unknown_method_is_a_405():
    response = client_for(UserFactory()).delete("/api/orders/")
    assert_error(response, 405, "method_not_allowed")


# ---- throttling ----


@pytest.fixture
def low_rates(monkeypatch):
    monkeypatch.setattr(
        ScopedRateThrottle, "THROTTLE_RATES", {"orders": "2/minute", "payments": "2/minute"}
    )


def test_order_creation_is_throttled_per_user(low_rates):
    product = ProductFactory()
    user = UserFactory()
    client = client_for(user)
    for _ in range(2):
        assert client.post("/api/orders/", {"product": product.product_bid},
                           format="json").status_code in (200, 201)  # fmt: skip
    throttled = client.post("/api/orders/", {"product": product.product_bid}, format="json")
    assert_error(throttled, 429, "throttled")
    assert int(throttled.headers["Retry-After"]) > 0
    # Another user has a budget of their own; reading is not throttled.
    other = client_for(UserFactory())
    assert other.post("/api/orders/", {"product": product.product_bid},
                      format="json").status_code == 201  # fmt: skip
    assert client.get("/api/orders/").status_code == 200


def test_payment_start_is_throttled_per_user(low_rates):
    user = UserFactory()
    order = own_order(user, product_bid=ProductFactory().product_bid, payment_channel="sandbox")
    client = client_for(user)
    for _ in range(2):
        assert client.post(f"/api/orders/{order.order_bid}/pay/", {},
                           format="json").status_code == 201  # fmt: skip
    throttled = client.post(f"/api/orders/{order.order_bid}/pay/", {}, format="json")
    assert_error(throttled, 429, "throttled")
    assert "Retry-After" in throttled.headers


# ---- query counts ----


def count_queries(client, path) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(queries)


def test_order_list_queries_do_not_grow_with_the_page():
    user = UserFactory()
    client = client_for(user)
    for _ in range(2):
        RefundFactory(order=own_order(user, paid=True))
    few = count_queries(client, "/api/orders/?page_size=50")
    for _ in range(23):
        RefundFactory(order=own_order(user, paid=True))
    assert len(client.get("/api/orders/?page_size=50").json()["results"]) == 25
    assert count_queries(client, "/api/orders/?page_size=50") == few


def test_order_queries_do_not_grow_with_attempts_and_refunds():
    user = UserFactory()
    client = client_for(user)
    order = own_order(user, paid=True, payable_price=Decimal("100.00"), payment_channel="sandbox")

    def add(n):
        for _ in range(n):
            SandboxAttempt.objects.create(
                order_bid=order.order_bid, user_bid=order.user_bid, amount=10000, currency="cny"
            )
            RefundFactory(order=order, amount=Decimal("1.00"))

    add(1)
    one = (
        count_queries(client, "/api/orders/"),
        count_queries(client, f"/api/orders/{order.order_bid}/"),
    )
    add(9)
    detail = client.get(f"/api/orders/{order.order_bid}/").json()
    assert detail["refundable_amount"] == "90.00"
    ten = (
        count_queries(client, "/api/orders/"),
        count_queries(client, f"/api/orders/{order.order_bid}/"),
    )
    assert ten == one


def test_refund_list_queries_do_not_grow_with_the_page():
    user = UserFactory()
    client = client_for(user)
    for _ in range(2):
        RefundFactory(order=own_order(user, paid=True))
    few = count_queries(client, "/api/refunds/?page_size=50")
    for _ in range(23):
        RefundFactory(order=own_order(user, paid=True))
    assert len(client.get("/api/refunds/?page_size=50").json()["results"]) == 25
    assert count_queries(client, "/api/refunds/?page_size=50") == few
    staff = client_for(UserFactory(is_staff=True))
    count_queries(staff, "/api/refunds/?page_size=5")  # the account's creator links, read once
    assert count_queries(staff, "/api/refunds/?page_size=5") == count_queries(
        staff, "/api/refunds/?page_size=50"
    )


# ---- health ----


def test_healthz():
    assert APIClient().get("/healthz").status_code == 200
    down = mock.patch.object(
        connections["default"], "cursor", side_effect=OperationalError("gone away")
    )
    with down:
        response = APIClient().get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down"


def test_refund_status_values_are_the_contracts():
    assert {s.value for s in RefundStatus} == {"pending", "succeeded", "failed"}
    assert {s.label for s in OrderStatus} == {
        "init", "unpaid", "paid", "refunded", "timeout", "cancelled", "revoked"
    }  # fmt: skip
