"""Real threads on MariaDB: caps hold under 20 concurrent buyers; a single-use code
goes to one order; counters stay equal to what is held while orders come and go."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from orders import services
from orders.models import Order, OrderStatus
from promos.errors import CouponLimitReached
from promos.models import TAKEN, CouponBatch, CouponUsage, UsageStatus
from tests.factories import ProductFactory, UserFactory
from tests.promos.helpers import shared, single
from tests.sandbox import sandbox_confirm
from tests.threads import run_together

pytestmark = [
    pytest.mark.mariadb,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sandbox_channel"),
]

THREADS = 20


def buy_and_pay(user_bid: str, product, code: str) -> Order:
    order, _ = services.order_create(
        user_bid=user_bid, product_bid=product.product_bid, coupon_code=code
    )
    started = services.payment_start(order=order)
    outcome, _, _ = sandbox_confirm(started.attempt.attempt_bid)
    assert outcome.http_status == 200, outcome
    order.refresh_from_db()
    return order


def held(batch) -> int:
    return CouponUsage.objects.filter(coupon_bid=batch.coupon_bid, status__in=TAKEN).count()


def test_twenty_buyers_of_a_code_capped_at_five_use_it_exactly_five_times():
    product = ProductFactory(price=Decimal("299.00"))
    batch, code = shared(code="FIVEONLY", percent="15", total_limit=5)

    results = run_together(lambda i: buy_and_pay(f"user-{i}", product, code), THREADS)

    paid = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, CouponLimitReached)]
    assert len(paid) == 5 and len(refused) == THREADS - 5, results
    assert all(o.status == OrderStatus.PAID and o.paid_price == Decimal("254.15") for o in paid)
    assert {r.code for r in refused} == {"coupon_limit_reached"}
    batch.refresh_from_db()
    assert batch.used_count == 5
    uses = CouponUsage.objects.filter(coupon_bid=batch.coupon_bid)
    assert uses.count() == uses.filter(status=UsageStatus.USED).count() == 5
    assert Order.objects.filter(discount_price__gt=0).count() == 5


def test_a_single_use_code_raced_by_twenty_buyers_is_used_once_the_rest_get_409():
    product = ProductFactory(price=Decimal("19.90"))
    batch, [code] = single(count=1, percent="15")
    users = [UserFactory() for _ in range(THREADS)]

    def order_and_pay(i):
        client = APIClient()
        client.force_authenticate(users[i])
        made = client.post(
            "/api/orders/", {"product": product.product_bid, "coupon_code": code}, format="json"
        )
        if made.status_code != 201:
            return made.status_code, made.json()["code"]
        bid = made.json()["order_bid"]
        paid = client.post(f"/api/orders/{bid}/pay/", {}, format="json")
        sandbox_confirm(paid.json()["payment"]["attempt_bid"])
        return 201, bid

    results = run_together(order_and_pay, THREADS)
    winners = [bid for status, bid in results if status == 201]
    assert len(winners) == 1, results
    assert sorted(r for r in results if r[0] != 201) == [(409, "coupon_used")] * (THREADS - 1)
    order = Order.objects.get(order_bid=winners[0])
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("16.91")
    use = CouponUsage.objects.get(coupon_bid=batch.coupon_bid)
    assert (use.status, use.order_bid) == (UsageStatus.USED, order.order_bid)
    batch.refresh_from_db()
    assert batch.used_count == 1


def test_cancellations_racing_new_buyers_never_pass_the_cap_nor_lose_count():
    product = ProductFactory(price=Decimal("50.00"))
    batch, code = shared(code="CHURN", percent="10", total_limit=5)
    first = [
        services.order_create(
            user_bid=f"early-{i}", product_bid=product.product_bid, coupon_code=code
        )[0]
        for i in range(5)
    ]

    def churn(i):
        if i < 5:
            return services.order_cancel(order=first[i])
        order, _ = services.order_create(
            user_bid=f"late-{i}", product_bid=product.product_bid, coupon_code=code
        )
        return order

    results = run_together(churn, THREADS)
    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, CouponLimitReached)
    ]
    assert not unexpected, unexpected
    batch.refresh_from_db()
    reserved = held(batch)
    assert reserved <= 5
    assert batch.used_count == reserved
    late = [r for r in results[5:] if isinstance(r, Order)]
    assert len(late) == reserved
    released = CouponUsage.objects.filter(coupon_bid=batch.coupon_bid, status=UsageStatus.RELEASED)
    assert released.count() == 5
    assert CouponBatch.objects.get(pk=batch.pk).used_count == reserved


def test_single_use_codes_given_back_while_others_take_them_never_deadlock_or_double():
    product = ProductFactory(price=Decimal("50.00"))
    batch, codes = single(count=5, percent="10")
    first = [
        services.order_create(
            user_bid=f"early-{i}", product_bid=product.product_bid, coupon_code=codes[i]
        )[0]
        for i in range(5)
    ]

    def churn(i):
        if i < 5:
            return services.order_cancel(order=first[i])
        order, _ = services.order_create(
            user_bid=f"late-{i}", product_bid=product.product_bid, coupon_code=codes[i % 5]
        )
        return order

    results = run_together(churn, THREADS)
    unexpected = [
        r for r in results if isinstance(r, Exception) and getattr(r, "code", "") != "coupon_used"
    ]
    assert not unexpected, unexpected
    live = CouponUsage.objects.filter(coupon_bid=batch.coupon_bid).exclude(
        status=UsageStatus.RELEASED
    )
    assert sorted(live.values_list("code", flat=True)) == sorted(codes)  # one row a code
    batch.refresh_from_db()
    assert batch.used_count == held(batch) == len([r for r in results[5:] if isinstance(r, Order)])


def test_twenty_staff_making_batches_with_one_code_make_one():
    from promos.batches import CodeTaken, batch_create
    from tests.promos.helpers import spec

    results = run_together(
        lambda i: batch_create(spec=spec(code="SAMECODE", name=f"b{i}"), actor=None), THREADS
    )
    made = [r for r in results if isinstance(r, tuple)]
    assert len(made) == 1, results
    assert all(isinstance(r, CodeTaken) for r in results if not isinstance(r, tuple)), results
    assert CouponBatch.objects.filter(code="SAMECODE").count() == 1


def slowed(function, seconds=0.2):
    """``function``, after a pause: widens the window in which two transactions that
    lock the same rows in crossed order would deadlock."""
    import time

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return function(*args, **kwargs)

    return slow


def test_buyers_swapping_codes_at_once_never_deadlock():
    from unittest import mock

    from promos import services as promo_services

    product = ProductFactory(price=Decimal("50.00"))
    _, first = shared(code="SWAPA", percent="10", total_limit=100)
    _, second = shared(code="SWAPB", percent="20", total_limit=100)
    users = [f"swap-{i}" for i in range(THREADS)]
    for i, user in enumerate(users):
        services.order_create(
            user_bid=user, product_bid=product.product_bid, coupon_code=(first, second)[i % 2]
        )

    def swap(i):
        order, _ = services.order_create(
            user_bid=users[i], product_bid=product.product_bid, coupon_code=(second, first)[i % 2]
        )
        return order

    with mock.patch.object(
        promo_services, "discounts_record", slowed(promo_services.discounts_record)
    ):
        results = run_together(swap, THREADS)
    assert all(isinstance(r, Order) for r in results), results
    for batch in CouponBatch.objects.filter(code__in=(first, second)):
        assert batch.used_count == held(batch) == THREADS // 2


def test_a_late_payment_while_the_buyer_cancels_the_new_order_never_deadlocks():
    from unittest import mock

    from promos import services as promo_services
    from tests.orders.services.helpers import unclosable

    product = ProductFactory(price=Decimal("50.00"))
    pairs = []
    for i in range(THREADS // 2):
        _, [code] = single(count=1, percent="10")
        late, _ = services.order_create(
            user_bid=f"late-{i}", product_bid=product.product_bid, coupon_code=code
        )
        started = services.payment_start(order=late)
        with unclosable():  # its attempt stays open at the provider: paid late below
            services.order_cancel(order=late)
        again, _ = services.order_create(
            user_bid=f"late-{i}", product_bid=product.product_bid, coupon_code=code
        )
        pairs.append((started.attempt.attempt_bid, again, late))

    def race(i):
        attempt_bid, again, _ = pairs[i // 2]
        if i % 2:
            return services.order_cancel(order=again)
        return sandbox_confirm(attempt_bid)[0]

    with mock.patch.object(
        promo_services, "discounts_release", slowed(promo_services.discounts_release)
    ):
        results = run_together(race, THREADS)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert {r.http_status for r in results[::2]} == {200}, results[::2]
    for _, again, late in pairs:
        late.refresh_from_db()
        again.refresh_from_db()
        assert late.status == OrderStatus.PAID and again.status == OrderStatus.CANCELLED
        assert CouponUsage.objects.get(order_bid=late.order_bid).status == UsageStatus.USED


def test_one_user_redeeming_activation_codes_at_once_gets_one_order_and_409s():
    from promos.batches import batch_create
    from tests.promos.helpers import activation_spec

    product = ProductFactory(price=Decimal("29.90"))
    _, codes = batch_create(spec=activation_spec(product.product_bid, count=THREADS), actor=None)
    user = UserFactory()

    def redeem(i):
        client = APIClient()
        client.force_authenticate(user)
        answer = client.post("/api/coupons/redeem/", {"code": codes[i]}, format="json")
        return answer.status_code, answer.json().get("code")

    results = run_together(redeem, THREADS)
    assert sorted(status for status, _ in results) == [201] + [409] * (THREADS - 1), results
    assert {code for status, code in results if status == 409} == {"already_purchased"}
    assert Order.objects.filter(product_bid=product.product_bid).count() == 1
    assert CouponUsage.objects.filter(status=UsageStatus.USED).count() == 1


def test_one_user_buying_twenty_products_with_a_once_a_user_code_uses_it_once():
    products = [ProductFactory(price=Decimal("10.00")) for _ in range(THREADS)]
    batch, code = shared(code="ONCEEACH", percent="10", total_limit=100, per_user_limit=1)

    def create(i):
        return services.order_create(
            user_bid="one-user", product_bid=products[i].product_bid, coupon_code=code
        )[0]

    results = run_together(create, THREADS)
    made = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, CouponLimitReached)]
    assert len(made) == 1 and len(refused) == THREADS - 1, results
    assert {r.details["limit"] for r in refused} <= {"per_user"}
    batch.refresh_from_db()
    assert batch.used_count == held(batch) == 1
