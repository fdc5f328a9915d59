"""What an order costs after its discounts, in integer minor units.

Rules (docs/coupons.md):

- Each discount is computed in minor units of the order's currency: a percentage is
  rounded half up to the minor unit (CNY 299.00 at 15 % takes 44.85 off; CNY 19.90 at
  15 % takes 2.99 off; JPY 990 at 15 % takes 149 off); a fixed value is taken as it is,
  in its own currency only.
- A discount never takes more than what is left: the payable never goes below zero.
- Promotions first, on the list price. Among the product's campaigns in force, the
  one that takes off most applies; campaigns marked stackable combine (each on what
  the previous left) and apply instead when together they take off more. Ties go to
  the fewer campaigns, then the older.
- Then the coupon: on what the promotions left when its batch stacks with promotions;
  otherwise the better of the two for the buyer applies alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from payments_project.money import display, to_major, to_minor

FIXED = 701
PERCENT = 702
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Discount:
    """A discount as it is defined: its kind, value and (fixed) currency."""

    kind: str  # "promotion" | "coupon"
    label: str
    discount_type: int
    value: Decimal
    currency: str = ""  # of a fixed value
    ref: object = None  # the campaign or batch it comes from
    stackable: bool = False


@dataclass(frozen=True)
class Line:
    kind: str  # "price" | "promotion" | "coupon"
    label: str
    amount: int  # minor units: positive for the price, negative for a discount
    ref: object = None

    def major(self, currency: str) -> Decimal:
        """The amount in major units, negative for a discount."""
        amount = to_major(abs(self.amount), currency)
        return -amount if self.amount < 0 else amount

    def as_dict(self, currency: str) -> dict:
        """As the API shows it: the amount a decimal string ("-44.85")."""
        return {"kind": self.kind, "label": self.label, "amount": display(self.major(currency))}


@dataclass(frozen=True)
class Quote:
    currency: str
    list_amount: int
    lines: tuple[Line, ...] = field(default_factory=tuple)

    @property
    def discount(self) -> int:
        return -sum(line.amount for line in self.lines if line.kind != "price")

    @property
    def payable(self) -> int:
        return self.list_amount - self.discount

    def discount_of(self, kind: str) -> int:
        return -sum(line.amount for line in self.lines if line.kind == kind)


def amount_off(base: int, discount: Discount, currency: str) -> int | None:
    """What ``discount`` takes off ``base`` minor units; None where it cannot apply
    (a fixed value in another currency)."""
    if discount.discount_type == PERCENT:
        off = (Decimal(base) * discount.value / HUNDRED).quantize(Decimal(1), ROUND_HALF_UP)
        return min(int(off), base)
    if discount.currency.lower() != currency.lower():
        return None
    return min(to_minor(discount.value, currency), base)


def _apply_all(
    base: int, discounts: Sequence[Discount], currency: str
) -> list[tuple[Discount, int]]:
    taken = []
    left = base
    for discount in discounts:
        off = amount_off(left, discount, currency) or 0
        taken.append((discount, off))
        left -= off
    return taken


def best_promotions(base: int, campaigns: Sequence[Discount], currency: str):
    """The campaigns that apply to ``base``, with what each takes off (see the rules)."""
    usable = [c for c in campaigns if amount_off(base, c, currency) is not None]
    options = [_apply_all(base, [c], currency) for c in usable]
    stackable = [c for c in usable if c.stackable]
    if len(stackable) > 1:
        options.append(_apply_all(base, stackable, currency))
    if not options:
        return []
    # Largest total off; then fewest campaigns; then the earliest in the given order.
    return max(options, key=lambda taken: (sum(off for _, off in taken), -len(taken)))


class NotApplicable(Exception):
    """A coupon that cannot apply to this order: ``reason`` says why."""

    def __init__(self, reason: str, *, promotion: int = 0, coupon: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.promotion = promotion
        self.coupon = coupon


def quote(
    *,
    list_amount: int,
    currency: str,
    label: str,
    campaigns: Sequence[Discount] = (),
    coupon: Discount | None = None,
) -> Quote:
    """The lines of an order of ``list_amount``: its price, its promotions, its coupon.

    Raises ``NotApplicable`` for a coupon fixed in another currency
    (``reason="currency"``), or one that does not combine with promotions that take off
    at least as much (``reason="promotion_better"``).
    """
    promotions = [(d, off) for d, off in best_promotions(list_amount, campaigns, currency) if off]
    promo_off = sum(off for _, off in promotions)
    lines = [Line("price", label, list_amount)]
    if coupon is not None:
        base = list_amount - promo_off if coupon.stackable else list_amount
        off = amount_off(base, coupon, currency)
        if off is None:
            raise NotApplicable("currency")
        if promotions and not coupon.stackable:
            if off <= promo_off:
                raise NotApplicable("promotion_better", promotion=promo_off, coupon=off)
            promotions = []  # the coupon alone is better for the buyer
    lines += [Line("promotion", d.label, -off, d.ref) for d, off in promotions]
    if coupon is not None:
        lines.append(Line("coupon", coupon.label, -off, coupon.ref))
    return Quote(currency=currency, list_amount=list_amount, lines=tuple(lines))
