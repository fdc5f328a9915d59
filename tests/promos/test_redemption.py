"""Coupons and promotions through the order services: quoted, reserved, used, given
back; every refusal with its code."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from orders import services
from orders.errors import RefundExceedsRefundable
from orders.models import Attention, AttentionKind, Order, OrderStatus
from payments.models import SandboxAttempt
from promos.errors import (
    CouponExpired,
    CouponLimitReached,
    CouponNotApplicable,
    CouponNotFound,
    CouponNotStarted,
    CouponUsed,
)
from promos.models import (
    BatchStatus,
    CampaignRedemption,
    CouponBatch,
    CouponUsage,
    RedemptionStatus,
    UsageStatus,
)
from tests.factories import ProductFactory
from tests.promos.helpers import activation_spec, buy, campaign, pay, shared, single
from tests.sandbox import sandbox_confirm

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox_channel")]


@pytest.fixture
def course():
    return ProductFactory(price=Decimal("299.00"), currency="cny", name="Course")


def uses(batch, *statuses):
    rows = CouponUsage.objects.filter(coupon_bid=batch.coupon_bid)
    return rows.filter(status__in=statuses).count() if statuses else rows.count()


def test_a_coupon_is_reserved_on_create_charged_exactly_and_used_when_paid(course):
    batch, code = shared(percent="15")
    order = buy(course, code=code)
    assert (order.payable_price, order.discount_price, order.due_price) == (
        Decimal("299.00"),
        Decimal("44.85"),
        Decimal("254.15"),
    )
    assert uses(batch, UsageStatus.RESERVED) == 1
    batch.refresh_from_db()
    assert batch.used_count == 1

    paid = pay(order)
    attempt = SandboxAttempt.objects.get(order_bid=order.order_bid)
    assert attempt.amount == 25415
    assert paid.status == OrderStatus.PAID and paid.paid_price == Decimal("254.15")
    use = CouponUsage.objects.get(order_bid=order.order_bid)
    assert (use.status, use.discount_amount, use.user_bid) == (
        UsageStatus.USED,
        Decimal("44.85"),
        "u1",
    )

    with pytest.raises(RefundExceedsRefundable):
        services.refund_request(order=paid, amount=Decimal("299.00"), reason="too much")
    services.refund_request(order=paid, amount=Decimal("254.15"), reason="all of it")
    paid.refresh_from_db()
    assert paid.status == OrderStatus.REFUNDED
    use.refresh_from_db()
    assert use.status == UsageStatus.RELEASED  # the batch gives a full refund's use back
    batch.refresh_from_db()
    assert batch.used_count == 0


def test_a_batch_that_keeps_uses_on_refund_keeps_them_and_a_partial_refund_keeps_all(course):
    batch, code = shared(fixed="50.00", release_on_refund=False)
    order = pay(buy(course, code=code))
    services.refund_request(order=order, amount=Decimal("10.00"), reason="part")
    assert uses(batch, UsageStatus.USED) == 1
    services.refund_request(order=order, amount=Decimal("239.00"), reason="rest")
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert uses(batch, UsageStatus.USED) == 1
    batch.refresh_from_db()
    assert batch.used_count == 1


def test_cancel_and_time_out_give_a_single_use_code_back_for_someone_else(course, committed):
    batch, [code] = single(count=1, percent="10")
    order = buy(course, user="a", code=code)
    with pytest.raises(CouponUsed) as taken:
        buy(course, user="b", code=code)
    assert (taken.value.code, taken.value.http_status) == ("coupon_used", 409)

    with committed():
        services.order_cancel(order=order)
    history = CouponUsage.objects.get(order_bid=order.order_bid)
    assert history.status == UsageStatus.RELEASED
    assert uses(batch, UsageStatus.AVAILABLE) == 1
    batch.refresh_from_db()
    assert batch.used_count == 0

    second = buy(course, user="b", code=code)
    assert second.discount_price == Decimal("29.90")
    with override_settings(PAY_ORDER_EXPIRE_SECONDS=60):
        Order.objects.filter(pk=second.pk).update(created_at=timezone.now() - timedelta(hours=1))
        with committed():
            assert services.orders_expire() == 1
    assert CouponUsage.objects.get(order_bid=second.order_bid).status == UsageStatus.RELEASED
    assert buy(course, user="c", code=code).discount_price == Decimal("29.90")


def test_a_late_payment_takes_its_code_back_or_tells_staff_it_cannot(course, committed):
    _, [code] = single(count=1, percent="10")
    order = buy(course, user="a", code=code)
    started = services.payment_start(order=order)
    services.order_cancel(order=order)  # its attempt is not closed (after commit) yet
    other = buy(course, user="b", code=code)  # the code went to someone else meanwhile

    with committed():
        sandbox_confirm(started.attempt.attempt_bid)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("269.10")
    assert CouponUsage.objects.get(order_bid=order.order_bid).status == UsageStatus.USED
    flagged = Attention.objects.get(kind=AttentionKind.COUPON_CONFLICT)
    assert flagged.subject_bid == order.order_bid and other.order_bid in flagged.reason


def test_a_late_payment_takes_a_free_code_back_without_staff(course, committed):
    batch, [code] = single(count=1, percent="10")
    order = buy(course, user="a", code=code)
    started = services.payment_start(order=order)
    services.order_cancel(order=order)  # its attempt is not closed (after commit) yet
    with committed():
        sandbox_confirm(started.attempt.attempt_bid)
    assert CouponUsage.objects.get(order_bid=order.order_bid).status == UsageStatus.USED
    assert uses(batch, UsageStatus.AVAILABLE) == 0
    batch.refresh_from_db()
    assert batch.used_count == 1
    assert not Attention.objects.exists()


def test_a_discount_to_zero_pays_the_order_at_once_through_channel_free(course):
    _, [code] = single(count=1, percent="100")
    order = buy(course, code=code)
    assert order.status == OrderStatus.PAID and order.payment_channel == "free"
    assert order.paid_price == 0 and order.due_price == 0
    assert CouponUsage.objects.get(order_bid=order.order_bid).status == UsageStatus.USED
    assert not SandboxAttempt.objects.exists()


def test_a_free_product_is_paid_through_channel_free_too():
    order = buy(ProductFactory(price=Decimal("0.00")))
    assert order.status == OrderStatus.PAID and order.payment_channel == "free"


def test_the_unpaid_order_is_reused_with_its_code_and_replaced_for_another(course, committed):
    _, first = shared(code="FIRST10", percent="10")
    _, second = shared(code="SECOND20", percent="20")
    order = buy(course, code=first)
    assert buy(course, code=first).order_bid == order.order_bid
    assert buy(course).order_bid == order.order_bid  # no code asked: the order as it is
    with committed():
        replaced = buy(course, code=second)
    assert replaced.order_bid != order.order_bid and replaced.discount_price == Decimal("59.80")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert CouponUsage.objects.get(order_bid=order.order_bid).status == UsageStatus.RELEASED


def test_promotions_apply_by_themselves_and_are_voided_with_the_order(course, committed):
    campaign(course.product_bid, percent="15", name="Launch")
    order = buy(course)
    assert order.due_price == Decimal("254.15")
    redemption = CampaignRedemption.objects.get(order_bid=order.order_bid)
    assert (redemption.discount_amount, redemption.status) == (
        Decimal("44.85"),
        RedemptionStatus.APPLIED,
    )
    with committed():
        services.order_cancel(order=order)
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.VOIDED


def test_a_coupon_stacks_on_a_promotion_only_where_its_batch_allows(course):
    campaign(course.product_bid, percent="10")
    _, stacking = shared(code="STACK10", percent="10", stacks=True)
    _, alone = shared(code="ALONE10", percent="10")
    _, better = shared(code="ALONE30", percent="30")
    assert buy(course, user="a", code=stacking).due_price == Decimal("242.19")
    with pytest.raises(CouponNotApplicable) as refused:
        buy(course, user="b", code=alone)
    assert refused.value.details["reason"] == "promotion_better"
    order = buy(course, user="c", code=better)
    assert order.due_price == Decimal("209.30")
    assert not CampaignRedemption.objects.filter(order_bid=order.order_bid).exists()


def test_each_refusal_has_its_code_and_writes_nothing(course):
    other = ProductFactory(price=Decimal("10.00"), currency="cny")
    yen = ProductFactory(price=Decimal("990"), currency="jpy")
    _, expired = shared(code="OLD", ends_in=timedelta(seconds=-1), starts_in=timedelta(days=-2))
    _, early = shared(code="SOON", starts_in=timedelta(days=1))
    _, scoped = shared(code="OTHERONLY", products=[other.product_bid])
    _, dollars = shared(code="FIVEUSD", fixed="5.00", currency="usd")
    _, capped = shared(code="ONCE", total_limit=1)
    _, mine = shared(code="MINE", per_user_limit=1)
    off, _ = shared(code="OFF")
    CouponBatch.objects.filter(pk=off.pk).update(status=BatchStatus.INACTIVE, created_user_bid="x")
    buy(other, user="first", code="ONCE")
    buy(other, user="me", code="MINE")

    cases = [
        ("NOPE", "u", course, CouponNotFound, 404),
        ("OFF", "u", course, CouponNotFound, 404),
        (expired, "u", course, CouponExpired, 400),
        (early, "u", course, CouponNotStarted, 400),
        (scoped, "u", course, CouponNotApplicable, 400),
        (dollars, "u", yen, CouponNotApplicable, 400),
        (capped, "u", course, CouponLimitReached, 409),
        (mine, "me", course, CouponLimitReached, 409),
    ]
    before = Order.objects.count()
    for code, user, product, error, status in cases:
        with pytest.raises(error) as refused:
            buy(product, user=user, code=code)
        assert refused.value.http_status == status, code
    assert Order.objects.count() == before
    assert CouponUsage.objects.filter(status=UsageStatus.RESERVED).count() == 2


def test_activation_codes_grant_their_product_and_nothing_else(course):
    from promos.batches import batch_create

    _, codes = batch_create(spec=activation_spec(course.product_bid, count=3), actor=None)
    assert len(set(codes)) == 3
    assert all(
        len(code) >= 12 and set(code) <= set("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for code in codes
    )
    order = buy(course, code=codes[0])
    assert order.status == OrderStatus.PAID and order.payment_channel == "free"
    with pytest.raises(CouponNotApplicable):
        buy(ProductFactory(), code=codes[1])


def test_an_order_that_paid_nothing_has_nothing_to_refund(course):
    from orders.errors import OrderNotRefundable

    _, [code] = single(count=1, percent="100")
    order = buy(course, code=code)
    with pytest.raises(OrderNotRefundable) as refused:
        services.refund_request(order=order, reason="nothing paid")
    assert refused.value.http_status == 409


def test_a_code_that_takes_nothing_off_is_refused_and_holds_nothing():
    cheap = ProductFactory(price=Decimal("0.04"))
    free = ProductFactory(price=Decimal("0.00"))
    _, code = shared(code="TENPC", percent="10")
    for product in (cheap, free):
        with pytest.raises(CouponNotApplicable) as refused:
            buy(product, code=code)
        assert refused.value.details["reason"] == "nothing_off"
    assert not CouponUsage.objects.filter(order_bid__gt="").exists()


def test_a_refund_reversed_back_to_revoked_takes_the_code_back(course):
    from orders.services.lifecycle import order_set_status

    batch, [code] = single(count=1, percent="10")
    order = pay(buy(course, code=code))
    services.entitlement_revoke(
        user_bid=order.user_bid, product_bid=course.product_bid, reason="r", source="partner:p"
    )
    services.refund_request(order=order, reason="all")
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert CouponUsage.objects.get(order_bid=order.order_bid).status == UsageStatus.RELEASED
    order_set_status(order=order, to=OrderStatus.REVOKED, source="test", refund_reversal=True)
    assert CouponUsage.objects.get(order_bid=order.order_bid).status == UsageStatus.USED
    assert uses(batch, UsageStatus.AVAILABLE) == 0
    batch.refresh_from_db()
    assert batch.used_count == 1
