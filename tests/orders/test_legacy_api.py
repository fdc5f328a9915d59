"""The old frontend's endpoints (orders/legacy_api/): the contract of ai-shifu's
``src/cook-web/src/c-api/order.ts`` and the pages that read it (``usePaymentFlow.ts``,
the Stripe result page), the old envelope and error numbers, the switch, and that each
endpoint is the REST API's service call.

Payments go through the sandbox, the Ping++ double and the Stripe double of the other
tests; runs on SQLite and on MariaDB.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from orders import selectors, services
from orders.legacy_api import codes
from orders.legacy_api.channels import old_channel, service_channel
from orders.models import Order, OrderStatus
from payments.models import AlipayOrder, PingxxOrder, StripeOrder, WechatpayOrder
from tests.bridge.conftest import platform, platform_token  # noqa: F401  (fixture)
from tests.factories import OrderFactory, ProductFactory, UserFactory
from tests.orders.conftest import STRIPE_PUBLISHABLE_KEY, STRIPE_SECRET_KEY
from tests.orders.test_platform_rows import native_attempt
from tests.payments.conftest import (  # noqa: F401  (fixtures)
    pingxx_double,
    pingxx_keys,
    pingxx_settings,
)
from tests.promos.helpers import shared, single, spec
from tests.sandbox import sandbox_confirm

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "init-order",
    "reqiure-to-pay",
    "query-order",
    "apply-discount",
    "payment-detail",
    "stripe/sync",
    "payment/sync",
]

# The old system's error table (src/api/error_codes.json), the numbers this layer uses,
# and the HTTP statuses its app answered as codes for HTTP errors.
OLD_ERROR_TABLE = {1001, 1004, 1005, 401, 2001, 3001, 3003, 3004, 3006, 3008, 3101, 3102,
                   3104, 3107, 3108, 4001, 5001, 5002, 9999}  # fmt: skip
OLD_HTTP_CODES = {405, 429}

RESULT_PAGE = "https://learn.example.com/payment/stripe/result?session_id={CHECKOUT_SESSION_ID}"


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def legacy(settings):
    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = ["sandbox"]
    settings.DEFAULT_PAYMENT_CHANNEL = "sandbox"
    settings.LEGACY_ORDER_API_ENABLED = True
    return settings


@pytest.fixture
def with_pingxx(legacy, pingxx_settings):  # noqa: F811
    pingxx_settings.PAYMENT_CHANNELS_ENABLED = ["sandbox", "pingxx"]
    return pingxx_settings


@pytest.fixture
def with_stripe(legacy, fake_stripe):
    legacy.STRIPE_API_BASE = fake_stripe.base_url
    legacy.STRIPE_SECRET_KEY = STRIPE_SECRET_KEY
    legacy.STRIPE_PUBLISHABLE_KEY = STRIPE_PUBLISHABLE_KEY
    legacy.STRIPE_CHECKOUT_SUCCESS_URL = RESULT_PAGE
    legacy.STRIPE_CHECKOUT_CANCEL_URL = "https://learn.example.com/c/course"
    legacy.PAYMENT_CHANNELS_ENABLED = ["sandbox", "stripe"]
    return legacy


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def call(client, endpoint: str, body: dict | None = None) -> dict:
    """POST to the old path as order.ts does; every answer is HTTP 200 JSON."""
    response = client.post(f"/api/order/{endpoint}", body or {}, format="json")
    assert response.status_code == 200, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def ok(client, endpoint: str, body: dict | None = None) -> dict:
    answer = call(client, endpoint, body)
    assert (answer["code"], answer["message"]) == (0, "success"), answer
    return answer["data"]


def failed(client, endpoint: str, body: dict | None, number: int, error: str) -> dict:
    answer = call(client, endpoint, body)
    assert (answer["code"], answer["error"]) == (number, error), answer
    assert isinstance(answer["message"], str) and answer["message"], answer
    assert "data" not in answer
    return answer


def assert_shape(data: dict, fields: dict) -> None:
    """Every field the frontend reads is there, with its type from order.ts."""
    for name, kind in fields.items():
        assert name in data, (name, data)
        assert isinstance(data[name], kind), (name, data[name])
        assert not isinstance(data[name], bool) or kind is bool, (name, data[name])


# AICourseBuyRecordDTO, as usePaymentFlow's OrderSnapshot reads it.
ORDER_SNAPSHOT = {"order_id": str, "user_id": str, "course_id": str, "price": str,
                  "status": int, "status_desc": str, "discount": str, "value_to_pay": str,
                  "price_item": list}  # fmt: skip
PRICE_ITEM = {"name": str, "price_name": str, "price": str, "is_discount": bool}
# PayUrlResponse.
PAY_URL = {"order_id": str, "user_id": str, "price": str, "channel": str, "qr_url": str,
           "payment_channel": str, "payment_payload": dict, "status": int}  # fmt: skip
STRIPE_PAYLOAD = {"mode": str, "client_secret": str, "checkout_session_url": str,
                  "checkout_session_id": str, "payment_intent_id": str,
                  "latest_charge_id": str}  # fmt: skip
NATIVE_PAYLOAD = {"qr_url": str, "credential": dict}
# StripePaymentDetail and PingxxPaymentDetail.
STRIPE_DETAIL = {"payment_channel": str, "order_bid": str, "course_id": str,
                 "payment_intent_id": str, "checkout_session_id": str, "latest_charge_id": str,
                 "status": int, "receipt_url": str, "payment_method": str, "metadata": dict,
                 "payment_intent_object": dict, "checkout_session_object": dict}  # fmt: skip
PINGXX_DETAIL = {"payment_channel": str, "order_bid": str, "course_id": str, "charge_id": str,
                 "transaction_no": str, "status": int, "amount": int, "currency": str,
                 "channel": str, "extra": dict, "charge_object": dict}  # fmt: skip
# NativePaymentDetail: the platform's own Alipay / WeChat Pay attempts, read only here.
NATIVE_DETAIL = {"payment_channel": str, "order_bid": str, "course_id": str,
                 "provider_attempt_id": str, "transaction_id": str, "status": int,
                 "raw_status": str, "amount": int, "currency": str, "channel": str,
                 "metadata": dict, "raw_request": dict, "raw_response": dict,
                 "raw_notification": dict}  # fmt: skip


def assert_snapshot(data: dict) -> None:
    assert_shape(data, ORDER_SNAPSHOT)
    for item in data["price_item"]:
        assert_shape(item, PRICE_ITEM)


def started_order(user, product=None) -> str:
    """An order made through init-order; its order_id."""
    product = product or ProductFactory()
    return ok(client_for(user), "init-order", {"course_id": product.product_bid})["order_id"]


# ---- the switch, the envelope, authentication ----


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_switched_off_the_paths_answer_as_any_unknown_api_path(legacy, endpoint):
    legacy.LEGACY_ORDER_API_ENABLED = False
    client = client_for(UserFactory())
    unknown = client.post("/api/nothing-here/", {}, format="json")
    response = client.post(f"/api/order/{endpoint}", {"order_id": "x"}, format="json")
    assert (response.status_code, response.json()) == (404, unknown.json())
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_without_a_sign_in_the_envelope_says_not_logged_in(endpoint):
    failed(APIClient(), endpoint, {"order_id": "x"}, 1004, "not_authenticated")


def test_the_platforms_tokens_sign_in_as_for_the_rest_api(platform):  # noqa: F811
    product = ProductFactory()
    client = APIClient()
    client.credentials(HTTP_TOKEN=platform_token("learner0001"))
    data = ok(client, "init-order", {"course_id": product.product_bid})
    assert data["user_id"] == "learner0001"
    rest = client.get(f"/api/orders/{data['order_id']}/")
    assert rest.status_code == 200 and rest.json()["user_bid"] == "learner0001"

    expired = platform_token("learner0001", exp=timezone.now() - timedelta(minutes=1))
    client.credentials(HTTP_TOKEN=expired)
    failed(client, "query-order", {"order_id": data["order_id"]}, 1005, "token_expired")
    forged = platform_token("learner0001", secret="a secret that is not the platform's own")
    client.credentials(HTTP_TOKEN=forged)
    failed(client, "query-order", {"order_id": data["order_id"]}, 1001, "authentication_failed")


def test_errors_are_http_200_with_the_old_number_and_the_stable_code():
    client = client_for(UserFactory())
    failed(client, "query-order", {}, 2001, "invalid")
    answer = failed(client, "query-order", {"order_id": 5}, 2001, "invalid")
    assert "order_id" in answer["errors"] and "order_id" in answer["message"]
    failed(client, "query-order", {"order_id": "no-such-order"}, 3001, "not_found")
    malformed = client.post("/api/order/query-order", "{", content_type="application/json")
    assert malformed.status_code == 200 and malformed.json()["code"] == 2001
    wrong_method = client.get("/api/order/query-order")
    assert wrong_method.status_code == 200
    assert (wrong_method.json()["code"], wrong_method.json()["error"]) == (
        405,
        "method_not_allowed",
    )


def test_every_old_number_is_one_of_the_old_system():
    assert set(codes.ERROR_CODES.values()) | {codes.WECHAT_OPEN_ID_REQUIRED} <= (
        OLD_ERROR_TABLE | OLD_HTTP_CODES
    )
    assert codes.legacy_error_code({"code": "something_new"}) == 9999


def test_an_outage_is_the_old_unknown_error(monkeypatch):
    from django.db import OperationalError

    user = UserFactory()

    def down(*args, **kwargs):
        raise OperationalError(2003, "Can't connect to MySQL server")

    monkeypatch.setattr(services, "order_create", down)
    answer = failed(client_for(user), "init-order", {"course_id": "c"}, 9999, "service_unavailable")
    assert "unavailable" in answer["message"]


# ---- init-order, query-order ----


def test_init_order_answers_the_order_snapshot_and_reuses_the_unpaid_order():
    user = UserFactory()
    product = ProductFactory(price=Decimal("299.00"))
    client = client_for(user)
    data = ok(client, "init-order", {"course_id": product.product_bid})
    assert_snapshot(data)
    assert data == {
        "order_id": data["order_id"],
        "user_id": selectors.user_bid_for(user),
        "course_id": product.product_bid,
        "price": "299",
        "status": 501,
        "status_desc": "Not initiated",
        "discount": "0",
        "value_to_pay": "299",
        "price_item": [
            {"name": "Product", "price_name": "Base price", "price": "299", "is_discount": False}
        ],
    }
    again = ok(client, "init-order", {"course_id": product.product_bid})
    assert again["order_id"] == data["order_id"]
    assert Order.objects.filter(product_bid=product.product_bid).count() == 1


def test_init_order_refusals():
    user = UserFactory()
    client = client_for(user)
    failed(client, "init-order", {"course_id": "no-such-course"}, 4001, "product_not_found")
    failed(client, "init-order", {}, 2001, "invalid")
    paid = OrderFactory(user_bid=selectors.user_bid_for(user), paid=True,
                        product_bid=ProductFactory().product_bid)  # fmt: skip
    failed(client, "init-order", {"course_id": paid.product_bid}, 3008, "already_purchased")


def test_query_order_shows_only_own_orders_with_the_old_status_numbers():
    user = UserFactory()
    order_id = started_order(user)
    client = client_for(user)
    data = ok(client, "query-order", {"order_id": order_id})
    assert_snapshot(data)
    assert (data["order_id"], data["status"], data["value_to_pay"]) == (order_id, 501, "19.90")
    failed(client_for(UserFactory()), "query-order", {"order_id": order_id}, 3001, "not_found")

    for status, number, words in [
        (OrderStatus.UNPAID, 504, "To be paid"),
        (OrderStatus.PAID, 502, "Success"),
        (OrderStatus.REFUNDED, 503, "Refund"),
        (OrderStatus.REVOKED, 503, "Refund"),
        (OrderStatus.TIMEOUT, 505, "Expired"),
        (OrderStatus.CANCELLED, 506, "Cancelled"),
    ]:
        Order.objects.filter(order_bid=order_id).update(status=status)
        data = ok(client, "query-order", {"order_id": order_id})
        assert (data["status"], data["status_desc"]) == (number, words)


def test_every_status_has_an_old_number():
    assert set(codes.STATUS_CODES) == set(OrderStatus)
    assert {codes.legacy_status(s) for s in OrderStatus} <= set(codes.STATUS_DESCRIPTIONS)
    assert [codes.legacy_status(s) for s in (501, 502, 503, 504, 505)] == [501, 502, 503, 504, 505]


# ---- reqiure-to-pay ----


def test_pay_through_the_sandbox_then_query_sees_it_paid():
    user = UserFactory()
    order_id = started_order(user)
    client = client_for(user)
    data = ok(client, "reqiure-to-pay", {"order_id": order_id, "payment_channel": "sandbox"})
    assert_shape(data, PAY_URL)
    assert (data["order_id"], data["price"], data["status"]) == (order_id, "19.90", 504)
    assert (data["channel"], data["payment_channel"]) == ("sandbox:confirm_page", "sandbox")
    assert data["qr_url"] == data["payment_payload"]["confirm_url"]
    attempt_bid = data["qr_url"].rstrip("/").rsplit("/", 1)[1]
    sandbox_confirm(attempt_bid)
    assert ok(client, "query-order", {"order_id": order_id})["status"] == 502


@pytest.mark.parametrize(
    ("channel", "payment_channel"),
    [("wx_pub_qr", "pingxx"), ("alipay_qr", "pingxx"), ("wx_pub_qr", None),
     ("pingxx:wx_pub_qr", None)],
)  # fmt: skip
def test_pay_through_pingxx_gives_the_qr_code(with_pingxx, pingxx_double, channel,  # noqa: F811
                                              payment_channel):  # fmt: skip
    user = UserFactory()
    order_id = started_order(user)
    body = {"order_id": order_id, "channel": channel, "payment_channel": payment_channel}
    data = ok(client_for(user), "reqiure-to-pay", body)
    assert_shape(data, PAY_URL)
    assert_shape(data["payment_payload"], NATIVE_PAYLOAD)
    method = channel.removeprefix("pingxx:")
    assert (data["channel"], data["payment_channel"], data["status"]) == (method, "pingxx", 504)
    assert data["qr_url"] == data["payment_payload"]["qr_url"]
    assert data["qr_url"].startswith(("weixin://", "https://qr.alipay.com/"))
    attempt = PingxxOrder.objects.get(order_bid=order_id)
    assert pingxx_double.charges[attempt.charge_id]["channel"] == method


@pytest.mark.parametrize(
    ("channel", "mode", "old"),
    [("stripe:checkout_session", "checkout_session", "stripe:checkout_session"),
     ("stripe", "checkout_session", "stripe:checkout_session"),
     ("stripe:payment_intent", "payment_intent", "stripe")],
)  # fmt: skip
def test_pay_through_stripe_gives_what_stripe_js_or_checkout_needs(with_stripe, fake_stripe,
                                                                   channel, mode, old):  # fmt: skip
    user = UserFactory()
    product = ProductFactory(price=Decimal("6.99"), currency="usd")
    order_id = started_order(user, product)
    body = {"order_id": order_id, "channel": channel, "payment_channel": "stripe"}
    data = ok(client_for(user), "reqiure-to-pay", body)
    assert_shape(data, PAY_URL)
    payload = data["payment_payload"]
    assert_shape(payload, STRIPE_PAYLOAD)
    assert (data["channel"], data["payment_channel"], payload["mode"]) == (old, "stripe", mode)
    attempt = StripeOrder.objects.get(order_bid=order_id)
    if mode == "checkout_session":
        assert payload["checkout_session_id"] == attempt.checkout_session_id
        assert payload["checkout_session_url"] and data["qr_url"] == payload["checkout_session_url"]
        session = fake_stripe.posts("/v1/checkout/sessions")[0]["params"]
        assert session["success_url"] == RESULT_PAGE
    else:
        assert payload["payment_intent_id"] == attempt.payment_intent_id
        assert payload["client_secret"] and data["qr_url"] == payload["client_secret"]


@pytest.mark.parametrize(
    ("body", "provider"),
    [({"payment_channel": "alipay", "channel": "alipay_qr"}, "alipay"),
     ({"payment_channel": "wechatpay", "channel": "wx_pub_qr"}, "wechatpay"),
     ({"channel": "wechatpay:wx_pub"}, "wechatpay")],
)  # fmt: skip
def test_a_native_provider_that_is_not_enabled_is_refused_clearly(body, provider):
    user = UserFactory()
    order_id = started_order(user)
    answer = failed(client_for(user), "reqiure-to-pay", {"order_id": order_id, **body}, 5001,
                    "payment_channel_not_enabled")  # fmt: skip
    assert answer["payment_channel"] == provider and provider in answer["message"]


def test_pay_refusals(with_pingxx, pingxx_double, settings):  # noqa: F811
    user = UserFactory()
    client = client_for(user)
    order_id = started_order(user)
    body = {"order_id": order_id, "payment_channel": "pingxx"}
    # WeChat in-app needs the payer's open id, which the old request never carried.
    failed(client, "reqiure-to-pay", {**body, "channel": "wx_pub"}, 5002, "payment_method_invalid")
    failed(client, "reqiure-to-pay", {**body, "channel": "alipay_wap"}, 5001,
           "payment_method_invalid")  # fmt: skip
    failed(client, "reqiure-to-pay", {**body, "payment_channel": "stripe"}, 5001,
           "payment_channel_not_enabled")  # fmt: skip
    pingxx_double.fail_next(502, times=5)
    answer = failed(client, "reqiure-to-pay", {**body, "channel": "alipay_qr"}, 3004,
                    "provider_unavailable")  # fmt: skip
    assert answer["payment_channel"] == "pingxx"
    Order.objects.filter(order_bid=order_id).update(
        created_at=timezone.now() - timedelta(seconds=settings.PAY_ORDER_EXPIRE_SECONDS + 60)
    )
    failed(client, "reqiure-to-pay", body, 3006, "order_expired")
    paid = OrderFactory(user_bid=selectors.user_bid_for(user), paid=True, payment_channel="sandbox")
    failed(client, "reqiure-to-pay", {"order_id": paid.order_bid}, 3003, "order_not_payable")


# ---- apply-discount ----


def test_apply_discount_prices_the_order_and_the_old_order_id_keeps_working():
    user = UserFactory()
    product = ProductFactory(price=Decimal("299.00"))
    _, code = shared("SPRING15", percent="15")
    client = client_for(user)
    order_id = started_order(user, product)
    data = ok(client, "apply-discount", {"order_id": order_id, "discount_code": code})
    assert_snapshot(data)
    assert (data["price"], data["discount"], data["value_to_pay"]) == ("299", "44.85", "254.15")
    assert data["status"] == 501
    assert data["price_item"] == [
        {"name": "Product", "price_name": "Base price", "price": "299", "is_discount": False},
        {"name": "Coupon", "price_name": "Test coupon (SPRING15)", "price": "44.85",
         "is_discount": True},
    ]  # fmt: skip
    # The frontend keeps using the order id init-order gave it: it means the new order.
    assert ok(client, "query-order", {"order_id": order_id}) == data
    paying = ok(client, "reqiure-to-pay", {"order_id": order_id, "payment_channel": "sandbox"})
    assert (paying["order_id"], paying["price"]) == (data["order_id"], "254.15")
    # The same code again changes nothing.
    again = ok(client, "apply-discount", {"order_id": order_id, "discount_code": code})
    assert again["order_id"] == data["order_id"] and again["value_to_pay"] == "254.15"


def test_a_code_that_leaves_nothing_to_pay_completes_the_purchase():
    user = UserFactory()
    product = ProductFactory()
    _, codes_made = single(products=[product.product_bid], percent="100")
    order_id = started_order(user, product)
    data = ok(client_for(user), "apply-discount",
              {"order_id": order_id, "discount_code": codes_made[0]})  # fmt: skip
    assert (data["status"], data["value_to_pay"]) == (502, "0")


def test_apply_discount_refusals():
    from promos.batches import batch_create

    user = UserFactory()
    client = client_for(user)
    order_id = started_order(user)
    body = {"order_id": order_id}
    failed(client, "apply-discount", {**body, "discount_code": "NOSUCHCODE"}, 3101,
           "coupon_not_found")  # fmt: skip
    failed(client, "apply-discount", {**body, "discount_code": " "}, 2001, "invalid")
    failed(client, "apply-discount", {"discount_code": "X"}, 2001, "invalid")
    batch_create(spec=spec(code="LATER", starts_in=timedelta(days=1)), actor=None)
    failed(client, "apply-discount", {**body, "discount_code": "LATER"}, 3104,
           "coupon_not_started")  # fmt: skip
    batch_create(spec=spec(code="GONE", starts_in=timedelta(days=-9), ends_in=timedelta(days=-1)),
                 actor=None)  # fmt: skip
    failed(client, "apply-discount", {**body, "discount_code": "GONE"}, 3108, "coupon_expired")
    batch_create(spec=spec(code="OTHERS", products=[ProductFactory().product_bid]), actor=None)
    failed(client, "apply-discount", {**body, "discount_code": "OTHERS"}, 9999,
           "coupon_not_applicable")  # fmt: skip
    _, taken = single()
    other = UserFactory()
    ok(client_for(other), "apply-discount",
       {"order_id": started_order(other), "discount_code": taken[0]})  # fmt: skip
    failed(client, "apply-discount", {**body, "discount_code": taken[0]}, 3102, "coupon_used")
    shared("ONCE", total_limit=1)
    ok(client_for(other), "apply-discount",
       {"order_id": started_order(other), "discount_code": "ONCE"})  # fmt: skip
    failed(client, "apply-discount", {**body, "discount_code": "ONCE"}, 3107,
           "coupon_limit_reached")  # fmt: skip


# ---- payment-detail and the syncs ----


def test_payment_detail_and_payment_sync_of_a_pingxx_order(with_pingxx, pingxx_double):  # noqa: F811
    user = UserFactory()
    client = client_for(user)
    order_id = started_order(user)
    failed(client, "payment-detail", {"order_id": order_id}, 3001, "attempt_not_found")
    ok(client, "reqiure-to-pay",
       {"order_id": order_id, "channel": "wx_pub_qr", "payment_channel": "pingxx"})  # fmt: skip
    detail = ok(client, "payment-detail", {"order_id": order_id})
    assert_shape(detail, PINGXX_DETAIL)
    attempt = PingxxOrder.objects.get(order_bid=order_id)
    assert (detail["payment_channel"], detail["order_bid"], detail["status"]) == (
        "pingxx",
        order_id,
        0,
    )
    assert (detail["charge_id"], detail["amount"], detail["channel"]) == (
        attempt.charge_id,
        1990,
        "wx_pub_qr",
    )
    assert detail["charge_object"]["id"] == attempt.charge_id

    pingxx_double.pay(attempt.charge_id)
    synced = ok(client, "payment/sync", {"order_id": order_id})
    assert_shape(synced, PINGXX_DETAIL)
    assert synced["status"] == 1
    assert ok(client, "query-order", {"order_id": order_id})["status"] == 502


@pytest.mark.parametrize(
    ("channel", "model"), [("alipay", AlipayOrder), ("wechatpay", WechatpayOrder)]
)
def test_payment_detail_of_a_native_order(channel, model):
    user = UserFactory()
    order = OrderFactory(user_bid=selectors.user_bid_for(user), paid=True, payment_channel=channel)
    native_attempt(model, order, bid="native-1")
    client = client_for(user)
    detail = ok(client, "payment-detail", {"order_id": order.order_bid})
    assert_shape(detail, NATIVE_DETAIL)
    assert (detail["payment_channel"], detail["status"], detail["transaction_id"]) == (
        channel,
        1,
        "2026120722001native-1",
    )
    assert detail["raw_request"] == {"out_trade_no": "native-1"}


def test_the_stripe_result_page_syncs_a_checkout_session(with_stripe, fake_stripe):
    user = UserFactory()
    client = client_for(user)
    order_id = started_order(user, ProductFactory(price=Decimal("6.99"), currency="usd"))
    paying = ok(client, "reqiure-to-pay",
                {"order_id": order_id, "channel": "stripe:checkout_session"})  # fmt: skip
    session_id = paying["payment_payload"]["checkout_session_id"]
    detail = ok(client, "payment-detail", {"order_id": order_id})
    assert_shape(detail, STRIPE_DETAIL)
    assert (detail["payment_channel"], detail["status"], detail["course_id"]) == (
        "stripe",
        0,
        Order.objects.get(order_bid=order_id).product_bid,
    )
    assert detail["checkout_session_id"] == session_id

    fake_stripe.complete_session(session_id)
    synced = ok(client, "stripe/sync", {"order_id": order_id, "session_id": session_id})
    assert_shape(synced, STRIPE_DETAIL)
    assert synced["status"] == 1 and synced["payment_intent_id"].startswith("pi_")
    assert ok(client, "query-order", {"order_id": order_id})["status"] == 502


def test_sync_of_an_order_paid_through_a_channel_with_no_provider_has_no_payment_to_show():
    user = UserFactory()
    order = OrderFactory(user_bid=selectors.user_bid_for(user), paid=True, payment_channel="free")
    failed(client_for(user), "stripe/sync", {"order_id": order.order_bid}, 3001,
           "attempt_not_found")  # fmt: skip
    failed(client_for(user), "payment-detail", {"order_id": order.order_bid}, 3001,
           "attempt_not_found")  # fmt: skip


def test_an_alipay_order_without_an_attempt_has_nothing_to_sync():
    user = UserFactory()
    order = OrderFactory(user_bid=selectors.user_bid_for(user), payment_channel="alipay",
                         status=OrderStatus.UNPAID)  # fmt: skip
    answer = call(client_for(user), "payment/sync", {"order_id": order.order_bid})
    assert answer["error"] == "attempt_not_found", answer
    assert ok(client_for(user), "query-order", {"order_id": order.order_bid})["status"] == 504


# ---- the channel names ----


@pytest.mark.parametrize(
    ("channel", "payment_channel", "expected"),
    [
        ("wx_pub_qr", "pingxx", ("pingxx", "wx_pub_qr")),
        ("alipay_qr", "pingxx", ("pingxx", "alipay_qr")),
        ("wx_pub", "pingxx", ("pingxx", "wx_pub")),
        ("wx_wap", "pingxx", ("pingxx", "wx_wap")),
        ("alipay_wap", "pingxx", ("pingxx", "alipay_wap")),  # refused by the registry
        ("wx_pub_qr", "", ("pingxx", "wx_pub_qr")),
        ("alipay_qr", "", ("pingxx", "alipay_qr")),
        ("pingxx:wx_wap", "", ("pingxx", "wx_wap")),
        ("pingxx", "", ("pingxx", None)),
        ("", "pingxx", ("pingxx", None)),
        ("stripe", "stripe", ("stripe", "checkout_session")),
        ("stripe", "", ("stripe", "checkout_session")),
        ("stripe:checkout_session", "stripe", ("stripe", "checkout_session")),
        ("stripe:checkout", "", ("stripe", "checkout_session")),
        ("stripe:payment_intent", "", ("stripe", "payment_intent")),
        ("stripe:intent", "stripe", ("stripe", "payment_intent")),
        ("payment_intent", "stripe", ("stripe", "payment_intent")),
        ("wx_pub_qr", "stripe", ("stripe", "checkout_session")),
        ("Stripe:Payment_Intent", " STRIPE ", ("stripe", "payment_intent")),
        ("sandbox:confirm_page", "", ("sandbox", "confirm_page")),
        ("", "sandbox", ("sandbox", None)),
        ("", "", (None, None)),
    ],
)
def test_old_channel_names_as_this_services(channel, payment_channel, expected):
    assert service_channel(channel, payment_channel) == expected


@pytest.mark.parametrize(
    ("channel", "payment_channel", "expected"),
    [("alipay_qr", "alipay", ("alipay", "alipay_qr")),
     ("wx_pub_qr", "wechatpay", ("wechatpay", "wx_pub_qr")),
     ("wx_pub", "wechatpay", ("wechatpay", "wx_pub")), ("alipay", "", ("alipay", None)),
     ("wechatpay:wx_pub_qr", "", ("wechatpay", "wx_pub_qr")), ("", "ALIPAY", ("alipay", None))],
)  # fmt: skip
def test_the_native_providers_are_their_channels_here(channel, payment_channel, expected):
    assert service_channel(channel, payment_channel) == expected


@pytest.mark.parametrize(
    ("method", "channel"),
    [("alipay_qr", "alipay"), ("wx_pub_qr", "wechatpay"), ("wx_pub", "wechatpay")],
)
def test_a_bare_method_goes_to_its_native_channel_when_enabled(settings, method, channel):
    """As the platform resolves it: Ping++ unless the native channel is enabled."""
    settings.PAYMENT_CHANNELS_ENABLED = ["pingxx"]
    assert service_channel(method, "") == ("pingxx", method)
    settings.PAYMENT_CHANNELS_ENABLED = ["pingxx", channel]
    assert service_channel(method, "") == (channel, method)


@pytest.mark.parametrize(
    ("channel", "method", "old"),
    [("pingxx", "wx_pub_qr", "wx_pub_qr"), ("pingxx", "alipay_qr", "alipay_qr"),
     ("stripe", "payment_intent", "stripe"),
     ("stripe", "checkout_session", "stripe:checkout_session"),
     ("sandbox", "confirm_page", "sandbox:confirm_page")],
)  # fmt: skip
def test_the_channel_the_old_answer_names(channel, method, old):
    assert old_channel(channel, method) == old


# ---- the same services as the REST API ----


def test_each_endpoint_calls_the_rest_apis_service(with_pingxx, pingxx_double):  # noqa: F811
    user = UserFactory()
    client = client_for(user)
    product = ProductFactory()
    _, code = shared("SAME10", percent="10")
    spies = {
        name: mock.patch.object(services, name, wraps=getattr(services, name))
        for name in ("order_create", "payment_start", "payment_sync")
    }
    spies["orders_visible_to"] = mock.patch.object(
        selectors, "orders_visible_to", wraps=selectors.orders_visible_to
    )
    calls = {name: spy.start() for name, spy in spies.items()}
    try:
        order_id = ok(client, "init-order", {"course_id": product.product_bid})["order_id"]
        assert calls["order_create"].call_args.kwargs["product_bid"] == product.product_bid
        ok(client, "apply-discount", {"order_id": order_id, "discount_code": code})
        assert calls["order_create"].call_args.kwargs["coupon_code"] == code
        ok(client, "reqiure-to-pay", {"order_id": order_id, "channel": "alipay_qr"})
        assert calls["payment_start"].call_args.kwargs["method"] == "alipay_qr"
        for endpoint in ("stripe/sync", "payment/sync"):
            calls["payment_sync"].reset_mock()
            ok(client, endpoint, {"order_id": order_id})
            assert calls["payment_sync"].call_count == 1
        for endpoint in ("query-order", "payment-detail"):
            calls["orders_visible_to"].reset_mock()
            ok(client, endpoint, {"order_id": order_id})
            assert calls["orders_visible_to"].call_args.args == (user,)
    finally:
        for spy in spies.values():
            spy.stop()


def test_answers_equal_the_rest_apis_for_the_same_order(with_pingxx, pingxx_double):  # noqa: F811
    user = UserFactory()
    client = client_for(user)
    product = ProductFactory(price=Decimal("299.00"))
    _, code = shared("EQUAL15", percent="15")

    legacy = ok(client, "init-order", {"course_id": product.product_bid})
    rest = client.post("/api/orders/", {"product": product.product_bid}, format="json")
    assert rest.status_code == 200 and rest.json()["order_bid"] == legacy["order_id"]  # reused

    discounted = ok(client, "apply-discount",
                    {"order_id": legacy["order_id"], "discount_code": code})  # fmt: skip
    rest = client.post("/api/orders/", {"product": product.product_bid, "coupon_code": code},
                       format="json").json()  # fmt: skip
    assert rest["order_bid"] == discounted["order_id"]
    assert_same_order(discounted, rest)

    ok(client, "reqiure-to-pay", {"order_id": discounted["order_id"], "channel": "wx_pub_qr"})
    rest = client.get(f"/api/orders/{discounted['order_id']}/").json()
    assert (rest["status"], rest["payment_channel"]) == ("unpaid", "pingxx")
    assert_same_order(ok(client, "query-order", {"order_id": discounted["order_id"]}), rest)

    pingxx_double.pay(PingxxOrder.objects.get(order_bid=discounted["order_id"]).charge_id)
    ok(client, "payment/sync", {"order_id": discounted["order_id"]})
    rest = client.post(f"/api/orders/{discounted['order_id']}/sync/").json()
    assert rest["status"] == "paid" and rest["paid_amount"] == "254.15"
    assert_same_order(ok(client, "query-order", {"order_id": discounted["order_id"]}), rest)


def assert_same_order(old: dict, rest: dict) -> None:
    assert old["order_id"] == rest["order_bid"] and old["user_id"] == rest["user_bid"]
    assert (old["course_id"], old["status"]) == (rest["product"], rest["status_code"])
    assert Decimal(old["price"]) == Decimal(rest["list_amount"])
    assert Decimal(old["discount"]) == Decimal(rest["discount_amount"])
    assert Decimal(old["value_to_pay"]) == Decimal(rest["payable_amount"])
    assert [item["price_name"] for item in old["price_item"][1:]] == [
        line["label"] for line in rest["lines"][1:]
    ]


def test_init_order_and_pay_share_the_rest_apis_throttles(monkeypatch):
    monkeypatch.setattr(
        ScopedRateThrottle, "THROTTLE_RATES", {"orders": "2/minute", "payments": "2/minute"}
    )
    user = UserFactory()
    client = client_for(user)
    product = ProductFactory()
    assert client.post("/api/orders/", {"product": product.product_bid},
                       format="json").status_code == 201  # fmt: skip
    order_id = ok(client, "init-order", {"course_id": product.product_bid})["order_id"]
    failed(client, "init-order", {"course_id": product.product_bid}, 429, "throttled")
    ok(client, "query-order", {"order_id": order_id})  # reading is not throttled
