"""Coupon batches and campaigns for the tests, made as staff would make them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from orders import services
from orders.models import Order
from promos.batches import BatchSpec, batch_create
from promos.models import Campaign, DiscountType, UsageType
from tests.sandbox import sandbox_confirm


def spec(
    *,
    products=(),
    percent: str | None = None,
    fixed: str | None = None,
    currency: str = "cny",
    usage: int = UsageType.SHARED,
    code: str = "",
    count: int = 0,
    total_limit: int = 100,
    per_user_limit: int = 1,
    stacks: bool = False,
    release_on_refund: bool = True,
    starts_in: timedelta = timedelta(days=-1),
    ends_in: timedelta = timedelta(days=30),
    name: str = "Test coupon",
) -> BatchSpec:
    now = timezone.now()
    discount_type = DiscountType.PERCENT if fixed is None else DiscountType.FIXED
    return BatchSpec(
        name=name,
        discount_type=discount_type,
        value=Decimal(fixed if fixed is not None else (percent or "10")),
        currency=currency if fixed is not None else "",
        starts_at=now + starts_in,
        ends_at=now + ends_in,
        products=list(products),
        usage=usage,
        code=code,
        count=count,
        total_limit=total_limit,
        per_user_limit=per_user_limit,
        stacks_with_promotions=stacks,
        release_on_refund=release_on_refund,
    )


def shared(code: str = "SAVE15", **kwargs):
    """A shared code; (batch, code)."""
    batch, codes = batch_create(spec=spec(code=code, **kwargs), actor=None)
    return batch, codes[0]


def single(count: int = 1, **kwargs):
    """A single-use batch of ``count`` codes; (batch, codes)."""
    kwargs.setdefault("total_limit", 0)
    return batch_create(spec=spec(usage=UsageType.SINGLE, count=count, **kwargs), actor=None)


def activation_spec(product_bid: str, count: int = 1) -> BatchSpec:
    """Codes that grant ``product_bid`` outright: 100 % off, that product only."""
    return spec(products=[product_bid], percent="100", usage=UsageType.SINGLE, count=count)


def campaign(product_bid: str, *, percent=None, fixed=None, currency="cny", **fields) -> Campaign:
    now = timezone.now()
    fields.setdefault("start_at", now - timedelta(days=1))
    fields.setdefault("end_at", now + timedelta(days=30))
    return Campaign.objects.create(
        shifu_bid=product_bid,
        name=fields.pop("name", "Launch offer"),
        discount_type=DiscountType.PERCENT if fixed is None else DiscountType.FIXED,
        value=Decimal(fixed if fixed is not None else (percent or "10")),
        currency=currency if fixed is not None else "",
        created_user_bid="staff",
        **fields,
    )


def buy(product, user="u1", code=""):
    order, _ = services.order_create(
        user_bid=user, product_bid=product.product_bid, coupon_code=code
    )
    return order


def pay(order) -> Order:
    started = services.payment_start(order=order)
    outcome, _, _ = sandbox_confirm(started.attempt.attempt_bid)
    assert outcome.http_status == 200, outcome
    order.refresh_from_db()
    return order
