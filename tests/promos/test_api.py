"""Coupons in the API: orders with a code, batches made by staff, activation codes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.core.cache import cache
from django.utils import timezone

from orders import selectors
from promos.models import CouponBatch, CouponUsage, UsageStatus, UsageType
from tests.factories import ProductFactory, UserFactory
from tests.orders.test_api import assert_error, client_for, user_with
from tests.promos.helpers import activation_spec, campaign, shared, single

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox_channel")]


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def course():
    return ProductFactory(price=Decimal("299.00"), currency="cny", name="Course")


def order_with(client, product, code):
    return client.post(
        "/api/orders/", {"product": product.product_bid, "coupon_code": code}, format="json"
    )


def test_an_order_with_a_code_shows_what_is_paid_the_list_price_and_the_lines(course):
    campaign(course.product_bid, percent="10", name="Launch", stackable=False)
    shared(code="STACK5", fixed="5.00", stacks=True, name="Welcome")
    buyer = UserFactory()
    response = order_with(client_for(buyer), course, "STACK5")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["list_amount"], body["discount_amount"], body["payable_amount"]) == (
        "299.00",
        "34.90",
        "264.10",
    )
    assert body["lines"] == [
        {"kind": "price", "label": "List price", "amount": "299.00", "display": "CN¥299.00"},
        {"kind": "promotion", "label": "Launch", "amount": "-29.90", "display": "-CN¥29.90"},
        {"kind": "coupon", "label": "Welcome (STACK5)", "amount": "-5.00", "display": "-CN¥5.00"},
    ]
    assert body["payable_display"] == "CN¥264.10"
    listed = client_for(buyer).get("/api/orders/").json()["results"]
    assert listed[0]["lines"] == body["lines"]

    paid = client_for(buyer).post(f"/api/orders/{body['order_bid']}/pay/", {}, format="json")
    assert paid.status_code == 201 and paid.json()["payment"]["amount"] == "264.10"


def test_each_coupon_error_answers_its_code_and_status(course):
    other, third = ProductFactory(price=Decimal("10.00")), ProductFactory(price=Decimal("10.00"))
    shared(code="GONE", starts_in=timedelta(days=-3), ends_in=timedelta(days=-1))
    shared(code="LATER", starts_in=timedelta(days=2))
    shared(code="ELSEWHERE", products=[other.product_bid])
    shared(code="ONCEONLY", total_limit=1)
    _, [used] = single(count=1)
    shared(code="MYONE", per_user_limit=1)
    buyer, first = UserFactory(), UserFactory()
    assert order_with(client_for(first), other, "ONCEONLY").status_code == 201
    assert order_with(client_for(first), third, used).status_code == 201
    assert order_with(client_for(buyer), other, "MYONE").status_code == 201

    client = client_for(buyer)
    assert_error(order_with(client, course, "NOSUCH"), 404, "coupon_not_found")
    assert_error(order_with(client, course, "GONE"), 400, "coupon_expired")
    assert_error(order_with(client, course, "LATER"), 400, "coupon_not_started")
    assert_error(order_with(client, course, "ELSEWHERE"), 400, "coupon_not_applicable")
    assert_error(order_with(client, course, used), 409, "coupon_used")
    assert_error(order_with(client, course, "ONCEONLY"), 409, "coupon_limit_reached")
    body = assert_error(order_with(client, course, "MYONE"), 409, "coupon_limit_reached")
    assert body["details"]["limit"] == "per_user"


def batch_body(**fields) -> dict:
    now = timezone.now()
    return {
        "name": "Spring",
        "discount_type": "percent",
        "value": "15",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "products": [],
        "usage": "single",
        "count": 25,
        **fields,
    }


def test_staff_make_a_single_use_batch_and_get_its_codes_back(course):
    staff = user_with("add_couponbatch", "view_couponbatch")
    client = client_for(staff)
    response = client.post("/api/coupon-batches/", batch_body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    codes = body["codes"]
    assert len(codes) == len(set(codes)) == 25
    assert all(len(c) >= 12 and not set(c) & set("0O1IL") for c in codes)
    assert body["usage"] == "single" and body["total_limit"] == 25
    assert body["figures"] == {"used": 0, "reserved": 0, "released": 0, "available": 25}
    batch = CouponBatch.objects.get(coupon_bid=body["coupon_bid"])
    assert batch.usage_type == UsageType.SINGLE
    entry = LogEntry.objects.get(object_id=str(batch.pk))
    assert entry.user == staff and entry.action_flag == ADDITION

    assert order_with(client_for(UserFactory()), course, codes[0]).status_code == 201
    again = client.get(f"/api/coupon-batches/{batch.coupon_bid}/").json()
    assert again["figures"]["reserved"] == 1 and sorted(again["codes"]) == sorted(codes)


def test_a_shared_batch_is_scoped_to_its_products_in_their_currency(course):
    staff = user_with("add_couponbatch")
    yen = ProductFactory(price=Decimal("990"), currency="jpy")
    client = client_for(staff)
    body = batch_body(
        usage="shared",
        code="YEN100",
        total_limit=10,
        discount_type="fixed",
        value="100",
        currency="JPY",
        products=[yen.product_bid],
    )
    del body["count"]
    made = client.post("/api/coupon-batches/", body, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["codes"] == ["YEN100"] and made.json()["currency"] == "jpy"
    assert_error(client.post("/api/coupon-batches/", body, format="json"), 409, "coupon_code_taken")
    mixed = {**body, "code": "MIXED", "products": [yen.product_bid, course.product_bid]}
    assert_error(
        client.post("/api/coupon-batches/", mixed, format="json"), 409, "currency_mismatch"
    )
    empty = {**body, "code": "EMPTY", "ends_at": body["starts_at"]}
    assert_error(
        client.post("/api/coupon-batches/", empty, format="json"), 409, "coupon_window_empty"
    )
    unknown = {**body, "code": "UNKNOWN", "products": ["nope"]}
    assert_error(
        client.post("/api/coupon-batches/", unknown, format="json"), 404, "product_not_found"
    )
    half_yen = {**body, "code": "HALFYEN", "value": "1.50"}
    assert_error(client.post("/api/coupon-batches/", half_yen, format="json"), 400, "invalid")
    too_much = {**batch_body(), "value": "100.01"}
    assert_error(client.post("/api/coupon-batches/", too_much, format="json"), 400, "invalid")


def test_only_staff_with_the_permission_make_or_read_batches():
    batch, _ = shared()
    for user in (UserFactory(), user_with("view_product")):
        client = client_for(user)
        assert_error(
            client.post("/api/coupon-batches/", batch_body(), format="json"),
            403,
            "permission_denied",
        )
        assert_error(
            client.get(f"/api/coupon-batches/{batch.coupon_bid}/"), 403, "permission_denied"
        )
    assert_error(
        client_for().post("/api/coupon-batches/", batch_body(), format="json"),
        401,
        "not_authenticated",
    )


def test_an_activation_code_gives_the_product_to_the_user_who_redeems_it(course):
    from promos.batches import batch_create

    _, codes = batch_create(spec=activation_spec(course.product_bid, count=2), actor=None)
    buyer = UserFactory()
    client = client_for(buyer)
    response = client.post("/api/coupons/redeem/", {"code": codes[0]}, format="json")
    assert response.status_code == 201, response.content
    order = response.json()
    assert (order["status"], order["payment_channel"], order["payable_amount"]) == (
        "paid",
        "free",
        "0.00",
    )
    assert order["user_bid"] == selectors.user_bid_for(buyer)
    assert_error(
        client.post("/api/coupons/redeem/", {"code": codes[1]}, format="json"),
        409,
        "already_purchased",
    )
    assert CouponUsage.objects.get(code=codes[1]).status == UsageStatus.AVAILABLE
    someone = client_for(UserFactory())
    assert_error(
        someone.post("/api/coupons/redeem/", {"code": codes[0]}, format="json"), 409, "coupon_used"
    )
    assert_error(
        client_for().post("/api/coupons/redeem/", {"code": codes[1]}, format="json"),
        401,
        "not_authenticated",
    )


def test_a_code_that_leaves_something_to_pay_is_no_activation_code(course):
    shared(code="HALF", percent="50", products=[course.product_bid])
    shared(code="ANY100", percent="100")
    client = client_for(UserFactory())
    for code in ("HALF", "ANY100"):
        body = assert_error(
            client.post("/api/coupons/redeem/", {"code": code}, format="json"),
            409,
            "coupon_not_applicable",
        )
        assert body["details"]["reason"] == "not_activation"
    assert not CouponUsage.objects.filter(status=UsageStatus.RESERVED).exists()
    assert_error(
        client.post("/api/coupons/redeem/", {"code": "NOPE"}, format="json"),
        404,
        "coupon_not_found",
    )
