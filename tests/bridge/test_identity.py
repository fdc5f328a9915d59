"""The platform's users sign in with its own tokens: header, Bearer or cookie; expired,
forged, logged out (token store in the machine's real Redis) and other users' tokens
are refused with their codes; orders are keyed by the platform's user_bid."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bridge.models import PlatformUser
from orders.models import Order, OrderStatus
from tests.bridge.conftest import USER_BID, platform_token
from tests.factories import OrderFactory, ProductFactory, UserFactory
from tests.redis_server import require_redis

pytestmark = pytest.mark.django_db
STORE_URL = "redis://127.0.0.1:6379/14"
PREFIX = "test-ai-shifu:user:"


@pytest.fixture(autouse=True)
def _channels(sandbox_channel):
    return sandbox_channel


def get(path: str, **headers):
    return APIClient().get(path, headers=headers)


def test_a_platform_token_signs_in_by_header_bearer_or_cookie(platform):
    token = platform_token()
    legacy = OrderFactory(user_bid=USER_BID, status=OrderStatus.PAID, paid_price=Decimal("9.90"))
    OrderFactory(user_bid="someone-else")
    by_header = get("/api/orders/", Token=token)
    by_bearer = get("/api/orders/", Authorization=f"Bearer {token}")
    cookie_client = APIClient()
    cookie_client.cookies["token"] = token
    by_cookie = cookie_client.get("/api/orders/")
    for answer in (by_header, by_bearer, by_cookie):
        assert answer.status_code == 200, answer.json()
        # The legacy order is theirs as it is, with its user_bid shown.
        assert [(o["order_bid"], o["user_bid"]) for o in answer.json()["results"]] == [
            (legacy.order_bid, USER_BID)
        ]
    # One shadow account, made on first sight.
    identity = PlatformUser.objects.get(user_bid=USER_BID)
    assert not identity.user.has_usable_password() and not identity.user.is_staff
    assert get_user_model().objects.filter(platform_identity__isnull=False).count() == 1


def test_orders_made_with_a_platform_token_are_keyed_by_its_user_bid(platform):
    product = ProductFactory(price=Decimal("19.90"))
    answer = APIClient().post(
        "/api/orders/", {"product": product.product_bid}, format="json",
        headers={"Token": platform_token()},
    )  # fmt: skip
    assert answer.status_code == 201, answer.json()
    assert answer.json()["user_bid"] == USER_BID
    assert Order.objects.get(order_bid=answer.json()["order_bid"]).user_bid == USER_BID


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (lambda: platform_token(exp=int(time.time()) - 5), "token_expired"),
        (lambda: platform_token(secret="x" * 40), "authentication_failed"),
        (lambda: "not.a.jwt", "authentication_failed"),
        (lambda: platform_token(user_bid="x" * 40), "authentication_failed"),
        (lambda: platform_token(user_bid=None), "authentication_failed"),
    ],
    ids=["expired", "bad-signature", "garbage", "user-bid-too-long", "no-user"],
)
def test_bad_tokens_are_refused_with_their_code(platform, token, code):
    answer = get("/api/orders/", Token=token())
    assert answer.status_code == 401
    assert answer.json()["code"] == code
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert not PlatformUser.objects.exists()


def test_the_token_store_refuses_a_logged_out_or_foreign_token(platform):
    store = require_redis(STORE_URL)
    platform.PLATFORM_TOKEN_STORE_URL = STORE_URL
    platform.PLATFORM_TOKEN_KEY_PREFIX = PREFIX
    from bridge import identity

    identity._token_store.cache_clear()
    try:
        token = platform_token()
        store.set(PREFIX + token, USER_BID, ex=60)
        assert get("/api/orders/", Token=token).status_code == 200
        # Mapped to another user in the store: refused.
        store.set(PREFIX + token, "another-user", ex=60)
        answer = get("/api/orders/", Token=token)
        assert (answer.status_code, answer.json()["code"]) == (401, "authentication_failed")
        # Logged out on the platform (the key deleted): refused at once.
        store.delete(PREFIX + token)
        answer = get("/api/orders/", Token=token)
        assert (answer.status_code, answer.json()["code"]) == (401, "authentication_failed")
        # A store that cannot be reached is an outage, not a refusal.
        platform.PLATFORM_TOKEN_STORE_URL = "redis://127.0.0.1:1/0"
        identity._token_store.cache_clear()
        answer = get("/api/orders/", Token=token)
        assert (answer.status_code, answer.json()["code"]) == (503, "token_store_unavailable")
    finally:
        identity._token_store.cache_clear()
        store.flushdb()


def test_a_disabled_shadow_account_is_refused(platform):
    get("/api/orders/", Token=platform_token())
    PlatformUser.objects.get(user_bid=USER_BID).user.__class__.objects.filter(
        platform_identity__user_bid=USER_BID
    ).update(is_active=False)
    answer = get("/api/orders/", Token=platform_token())
    assert (answer.status_code, answer.json()["code"]) == (401, "authentication_failed")


def test_a_cookie_token_does_not_post_without_csrf(platform):
    product = ProductFactory()
    client = APIClient(enforce_csrf_checks=True)
    client.cookies["token"] = platform_token()
    answer = client.post("/api/orders/", {"product": product.product_bid}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (403, "csrf_failed")
    assert not Order.objects.exists()
    # The header is the frontend's way, and needs no CSRF token.
    answer = APIClient(enforce_csrf_checks=True).post(
        "/api/orders/", {"product": product.product_bid}, format="json",
        headers={"Token": platform_token()},
    )  # fmt: skip
    assert answer.status_code == 201


def test_local_accounts_keep_working(platform):
    user = UserFactory()
    OrderFactory(user_bid=str(user.pk))
    token = Token.objects.create(user=user)
    answer = get("/api/orders/", Authorization=f"Token {token.key}")
    assert answer.status_code == 200 and len(answer.json()["results"]) == 1
    assert answer.json()["results"][0]["user_bid"] == str(user.pk)


def test_without_a_platform_secret_tokens_are_not_read(settings):
    settings.PLATFORM_JWT_SECRET = ""
    answer = get("/api/orders/", Token=platform_token())
    assert (answer.status_code, answer.json()["code"]) == (401, "not_authenticated")
    assert answer.headers["WWW-Authenticate"].startswith("Token")


def test_signing_in_costs_one_query_once_the_user_is_known(platform):
    token = platform_token()
    get("/api/products/", Token=token)
    with CaptureQueriesContext(connection) as queries:
        assert get("/api/products/", Token=token).status_code == 200
    identity_reads = [q for q in queries.captured_queries if "bridge_platform_users" in q["sql"]]
    assert len(identity_reads) == 1


def test_the_checkout_pages_take_the_platform_cookie(platform):
    order = OrderFactory(user_bid=USER_BID)
    client = APIClient()
    assert client.get(f"/orders/{order.order_bid}/").status_code == 302  # to sign in
    client.cookies["token"] = platform_token()
    page = client.get(f"/orders/{order.order_bid}/")
    assert page.status_code == 200
    assert order.order_bid in page.content.decode()
    # Another user's token does not open it; a forged one leaves the visitor anonymous.
    client.cookies["token"] = platform_token("another-user")
    assert client.get(f"/orders/{order.order_bid}/").status_code == 404
    client.cookies["token"] = platform_token(secret="forged-forged-forged-forged-forged-forged")
    assert client.get(f"/orders/{order.order_bid}/").status_code == 302


def test_a_stale_platform_cookie_does_not_lock_out_a_session(platform, client):
    user = UserFactory()
    OrderFactory(user_bid=str(user.pk))
    client.force_login(user)
    client.cookies["token"] = platform_token(exp=int(time.time()) - 5)
    answer = client.get("/api/orders/")
    assert answer.status_code == 200 and len(answer.json()["results"]) == 1
    # Alone, the same cookie is refused with its code.
    alone = APIClient()
    alone.cookies["token"] = platform_token(exp=int(time.time()) - 5)
    assert alone.get("/api/orders/").json()["code"] == "token_expired"


def test_without_the_token_store_a_production_deployment_is_warned(platform):
    from bridge.checks import check_platform_settings

    platform.DEBUG = False
    assert "config.W002" in {m.id for m in check_platform_settings()}
    platform.PLATFORM_TOKEN_STORE_URL = STORE_URL
    assert "config.W002" not in {m.id for m in check_platform_settings()}


def test_a_shadow_account_in_a_session_keeps_its_user_bid_and_a_local_one_costs_no_query(
    platform, client
):
    get("/api/orders/", Token=platform_token())
    shadow = PlatformUser.objects.get(user_bid=USER_BID).user
    OrderFactory(user_bid=USER_BID)
    client.force_login(shadow)  # e.g. staff looking at it in the admin, then the API
    assert client.get("/api/orders/").json()["results"][0]["user_bid"] == USER_BID
    local = UserFactory()
    client.force_login(local)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/orders/").status_code == 200
    assert not [q for q in queries.captured_queries if "bridge_platform_users" in q["sql"]]
