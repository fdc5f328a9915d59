"""Discounts in minor units: rounding, caps, promotions' choice and stacking."""

from decimal import Decimal

import pytest

from promos.pricing import FIXED, PERCENT, Discount, NotApplicable, amount_off, quote


def pct(value: str, *, stackable=False, label="P") -> Discount:
    return Discount("promotion", label, PERCENT, Decimal(value), stackable=stackable)


def fixed(value: str, currency="cny", *, stackable=False, label="F", kind="promotion"):
    return Discount(kind, label, FIXED, Decimal(value), currency, stackable=stackable)


@pytest.mark.parametrize(
    ("price", "currency", "payable", "line"),
    [
        (29900, "cny", 25415, "-44.85"),
        (1990, "cny", 1691, "-2.99"),  # 298.5 fen rounds half up to 299
        (990, "jpy", 841, "-149.00"),  # 148.5 yen rounds half up to 149
        (1, "cny", 1, "0.00"),  # 0.15 fen rounds to nothing
        (10, "cny", 8, "-0.02"),  # 1.5 fen rounds half up
    ],
)
def test_a_percentage_is_rounded_half_up_to_the_minor_unit(price, currency, payable, line):
    coupon = Discount("coupon", "C", PERCENT, Decimal("15"))
    quoted = quote(list_amount=price, currency=currency, label="Course", coupon=coupon)
    assert quoted.payable == payable
    assert quoted.discount + quoted.payable == price
    assert [ln.as_dict(currency)["amount"] for ln in quoted.lines][1] == line


def test_a_fixed_discount_never_goes_below_zero_and_only_in_its_currency():
    assert amount_off(500, fixed("9.99"), "cny") == 500
    assert amount_off(5000, fixed("9.99"), "cny") == 999
    assert amount_off(5000, fixed("9.99", "usd"), "cny") is None
    quoted = quote(list_amount=500, currency="cny", label="x", coupon=fixed("9.99", kind="coupon"))
    assert quoted.payable == 0 and quoted.discount == 500
    with pytest.raises(NotApplicable) as refused:
        quote(list_amount=500, currency="jpy", label="x", coupon=fixed("1", kind="coupon"))
    assert refused.value.reason == "currency"


def test_the_best_single_promotion_applies_not_all_of_them():
    quoted = quote(
        list_amount=10000,
        currency="cny",
        label="x",
        campaigns=[pct("10", label="ten"), fixed("25.00", label="25 off"), pct("20", label="20")],
    )
    assert [(ln.label, ln.amount) for ln in quoted.lines[1:]] == [("25 off", -2500)]


def test_stackable_promotions_combine_each_on_what_the_previous_left_when_better():
    campaigns = [pct("10", stackable=True, label="a"), pct("10", stackable=True, label="b")]
    quoted = quote(list_amount=10000, currency="cny", label="x", campaigns=campaigns)
    assert [(ln.label, ln.amount) for ln in quoted.lines[1:]] == [("a", -1000), ("b", -900)]
    # A single campaign that takes off more beats the stack.
    quoted = quote(
        list_amount=10000, currency="cny", label="x", campaigns=[*campaigns, pct("25", label="c")]
    )
    assert [ln.label for ln in quoted.lines[1:]] == ["c"]


def test_a_tie_goes_to_fewer_campaigns_then_the_older():
    quoted = quote(
        list_amount=10000,
        currency="cny",
        label="x",
        campaigns=[pct("10", label="old"), pct("10", label="new")],
    )
    assert [ln.label for ln in quoted.lines[1:]] == ["old"]


def test_a_coupon_that_stacks_is_computed_on_what_the_promotion_left():
    coupon = Discount("coupon", "C", PERCENT, Decimal("10"), stackable=True)
    quoted = quote(
        list_amount=10000, currency="cny", label="x", campaigns=[pct("20")], coupon=coupon
    )
    assert [ln.amount for ln in quoted.lines] == [10000, -2000, -800]
    assert quoted.payable == 7200


def test_a_coupon_that_does_not_stack_applies_alone_when_better_or_is_refused():
    better = Discount("coupon", "C", PERCENT, Decimal("30"))
    quoted = quote(
        list_amount=10000, currency="cny", label="x", campaigns=[pct("20")], coupon=better
    )
    assert [(ln.kind, ln.amount) for ln in quoted.lines] == [("price", 10000), ("coupon", -3000)]
    worse = Discount("coupon", "C", PERCENT, Decimal("20"))
    with pytest.raises(NotApplicable) as refused:
        quote(list_amount=10000, currency="cny", label="x", campaigns=[pct("20")], coupon=worse)
    assert (refused.value.reason, refused.value.promotion, refused.value.coupon) == (
        "promotion_better",
        2000,
        2000,
    )
