"""Reads of discounts: campaigns in force, a code's batch, what is held, the figures."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat

from payments_project.db import Deleted
from promos.models import (
    TAKEN,
    Campaign,
    CampaignApplyType,
    CampaignRedemption,
    CouponBatch,
    CouponUsage,
    RedemptionStatus,
    UsageStatus,
    UsageType,
    enabled_q,
)


def campaigns_in_force(*, product_bid: str, now) -> list[Campaign]:
    """The product's automatic campaigns whose window holds ``now``, oldest first."""
    return list(
        Campaign.objects.filter(
            enabled_q(),
            shifu_bid=product_bid,
            deleted=Deleted.ACTIVE,
            apply_type=CampaignApplyType.AUTO,
            start_at__lte=now,
            end_at__gt=now,
        ).order_by("id")
    )


def coupon_lookup(
    code: str, product_bid: str = ""
) -> tuple[CouponBatch | None, CouponUsage | None]:
    """The batch of ``code``: a shared batch's own code, or a single-use batch's code
    row (the one that is not the history of a release). The old system's tables may
    hold one code in several shared batches: the newest in force for ``product_bid``
    is taken, as the old system did, else the newest in force, else the newest."""
    shared = list(
        CouponBatch.objects.filter(code=code, deleted=Deleted.ACTIVE)
        .exclude(usage_type=UsageType.SINGLE)
        .order_by("-id")[:20]
    )
    if shared:
        enabled = [batch for batch in shared if batch.enabled]
        fits = [b for b in enabled if not b.products or product_bid in b.products]
        return (fits or enabled or shared)[0], None
    row = (
        CouponUsage.objects.filter(code=code, deleted=Deleted.ACTIVE)
        .exclude(status=UsageStatus.RELEASED)
        .order_by("id")
        .first()
    )
    if row is None:
        return None, None
    batch = CouponBatch.objects.filter(
        coupon_bid=row.coupon_bid, deleted=Deleted.ACTIVE, usage_type=UsageType.SINGLE
    ).first()
    return (batch, row) if batch is not None else (None, None)


def uses_held(*, coupon_bid: str, user_bid: str) -> int:
    """The user's uses of the batch that count against their cap: reserved or used."""
    return CouponUsage.objects.filter(
        coupon_bid=coupon_bid, user_bid=user_bid, status__in=TAKEN, deleted=Deleted.ACTIVE
    ).count()


def order_coupon_code(order_bid: str) -> str:
    """The code an order holds or used ("" when none)."""
    row = (
        CouponUsage.objects.filter(order_bid=order_bid, status__in=TAKEN)
        .values_list("code", flat=True)
        .first()
    )
    return row or ""


def order_discount_lines(order_bids: list[str]) -> dict[str, list[dict]]:
    """The discount lines of each order, promotions then coupon, in one query:
    ``{order_bid: [{"kind", "label", "amount"}]}`` (amounts negative, major units)."""
    found: dict[str, list[dict]] = {bid: [] for bid in order_bids}
    if not order_bids:
        return found
    promotions = (
        CampaignRedemption.objects.filter(order_bid__in=order_bids, deleted=Deleted.ACTIVE)
        .annotate(kind=Value(1), label=F("promo_name"))
        .values_list("kind", "id", "order_bid", "label", "discount_amount")
    )
    coupons = (
        CouponUsage.objects.filter(order_bid__in=order_bids, deleted=Deleted.ACTIVE)
        .exclude(status=UsageStatus.AVAILABLE)
        .annotate(kind=Value(2), label=Concat("name", Value(" ("), "code", Value(")")))
        .values_list("kind", "id", "order_bid", "label", "discount_amount")
    )
    for kind, _, order_bid, label, amount in sorted(promotions.union(coupons, all=True)):
        found[order_bid].append(
            {"kind": "promotion" if kind == 1 else "coupon", "label": label, "amount": -amount}
        )
    return found


def batch_figures(coupon_bids: list[str]) -> dict[str, dict[str, int]]:
    """Per batch: codes used, reserved, released and still available."""
    rows = (
        CouponUsage.objects.filter(coupon_bid__in=coupon_bids, deleted=Deleted.ACTIVE)
        .values("coupon_bid")
        .annotate(
            used=Count("pk", filter=Q(status=UsageStatus.USED)),
            reserved=Count("pk", filter=Q(status=UsageStatus.RESERVED)),
            released=Count("pk", filter=Q(status=UsageStatus.RELEASED)),
            available=Count("pk", filter=Q(status=UsageStatus.AVAILABLE)),
        )
    )
    empty = {"used": 0, "reserved": 0, "released": 0, "available": 0}
    figures = {bid: dict(empty) for bid in coupon_bids}
    for row in rows:
        figures[row.pop("coupon_bid")] = row
    return figures


def campaign_figures(promo_bids: list[str]) -> dict[str, dict]:
    """Per campaign: orders it applied to, voided, and what it took off by currency
    (``{"cny": Decimal("59.80")}``; a product's currency may have changed). Summed
    here, not in the database: SQLite sums DECIMAL columns through floats."""
    figures = {bid: {"applied": 0, "voided": 0, "taken_off": {}} for bid in promo_bids}
    rows = (
        CampaignRedemption.objects.filter(promo_bid__in=promo_bids, deleted=Deleted.ACTIVE)
        .values("promo_bid", "status", "currency")
        .annotate(orders=Count("pk"))
    )
    applied = RedemptionStatus.APPLIED
    for row in rows:
        found = figures[row["promo_bid"]]
        found["applied" if row["status"] == applied else "voided"] += row["orders"]
    amounts = CampaignRedemption.objects.filter(
        promo_bid__in=promo_bids, deleted=Deleted.ACTIVE, status=applied
    ).values_list("promo_bid", "currency", "discount_amount")
    for promo_bid, currency, amount in amounts.iterator():
        taken = figures[promo_bid]["taken_off"]
        taken[currency] = taken.get(currency, Decimal("0.00")) + amount
    return figures
