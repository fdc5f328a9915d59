"""Discounts taken by orders: quoted and reserved when an order is made, used when it
is paid, given back when it is cancelled, times out or (by its batch's setting) is
refunded in full.

Race-free by row locks: a reservation counts itself against its batch with a
conditional update of the batch's row (``promo_coupons``: ``used_count < total_count``),
which holds the row's lock to the end of the transaction; under it, the user's own cap
is read and a single-use code's row taken (again a conditional update). Every service
locks a batch before its codes' rows, and both after the caller's (the purchase lock,
then the order), so no two services deadlock. Orders call these in their own
transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from payments_project.db import Deleted
from payments_project.money import to_major
from promos import selectors
from promos.errors import (
    CouponError,
    CouponExpired,
    CouponLimitReached,
    CouponNotApplicable,
    CouponNotFound,
    CouponNotStarted,
    CouponUsed,
)
from promos.models import (
    TAKEN,
    Campaign,
    CampaignRedemption,
    CouponBatch,
    CouponUsage,
    RedemptionStatus,
    UsageStatus,
    UsageType,
)
from promos.pricing import Discount, NotApplicable, Quote, quote


@dataclass
class Reservation:
    """An order's discounts, quoted and checked, not yet written: ``discounts_record``
    takes the caps under the batch's lock."""

    quote: Quote
    batch: CouponBatch | None = None
    code: str = ""
    code_row: CouponUsage | None = None  # a single-use code's row, as read

    @property
    def coupon_off(self) -> int:
        return self.quote.discount_of("coupon")

    @property
    def campaigns(self) -> list[tuple[Campaign, int]]:
        """The promotions that apply, with what each takes off (minor units)."""
        return [(line.ref, -line.amount) for line in self.quote.lines if line.kind == "promotion"]


def batch_discount(batch: CouponBatch) -> Discount:
    return Discount(
        kind="coupon",
        label=f"{batch.name} ({batch.code})" if batch.code else batch.name,
        discount_type=batch.discount_type,
        value=batch.value,
        currency=batch.currency,
        ref=batch,
        stackable=batch.stacks_with_promotions,
    )


def campaign_discount(campaign: Campaign) -> Discount:
    return Discount(
        kind="promotion",
        label=campaign.name,
        discount_type=campaign.discount_type,
        value=campaign.value,
        currency=campaign.currency,
        ref=campaign,
        stackable=campaign.stackable,
    )


def discounts_prepare(
    *,
    user_bid: str,
    product_bid: str,
    label: str,
    currency: str,
    list_amount: int,
    coupon_code: str = "",
    now=None,
) -> Reservation:
    """Quote an order of ``product_bid`` and check its coupon, writing nothing. Raises a
    ``CouponError`` for a code that cannot be taken."""
    now = now or timezone.now()
    campaigns = selectors.campaigns_in_force(product_bid=product_bid, now=now)
    code = (coupon_code or "").strip()
    batch, code_row = (None, None)
    if code:
        batch, code_row = _coupon_checked(code=code, product_bid=product_bid, now=now)
        _caps_check(batch=batch, code=code, code_row=code_row)
    try:
        quoted = quote(
            list_amount=list_amount,
            currency=currency,
            label=label,
            campaigns=[campaign_discount(c) for c in campaigns],
            coupon=batch_discount(batch) if batch else None,
        )
    except NotApplicable as exc:
        if exc.reason == "currency":
            raise CouponNotApplicable(
                f"Coupon {code!r} takes {batch.value} {batch.currency.upper()} off; this "
                f"order is in {currency.upper()}.",
                coupon=code,
                reason="currency",
            ) from None
        raise CouponNotApplicable(
            f"Coupon {code!r} does not combine with the promotion on this product, which "
            "takes off at least as much.",
            coupon=code,
            reason="promotion_better",
        ) from None
    if batch is not None and not quoted.discount_of("coupon"):
        raise CouponNotApplicable(
            f"Coupon {code!r} takes nothing off this order.", coupon=code, reason="nothing_off"
        )
    return Reservation(quote=quoted, batch=batch, code=code, code_row=code_row)


def _coupon_checked(*, code: str, product_bid: str, now) -> tuple[CouponBatch, CouponUsage | None]:
    """The batch of ``code`` (and, single-use, the code's row), checked: in force, for
    this product. Not locked: ``_caps_take`` takes the caps when the order is written."""
    batch, code_row = selectors.coupon_lookup(code, product_bid)
    if batch is None or not batch.enabled:
        raise CouponNotFound(f"No coupon {code!r}.", coupon=code)
    if batch.start and now < batch.start:
        raise CouponNotStarted(
            f"Coupon {code!r} is valid from {batch.start:%Y-%m-%d %H:%M} UTC.",
            coupon=code,
            starts_at=batch.start.isoformat(),
        )
    if batch.end and now > batch.end:
        raise CouponExpired(
            f"Coupon {code!r} expired at {batch.end:%Y-%m-%d %H:%M} UTC.",
            coupon=code,
            ended_at=batch.end.isoformat(),
        )
    scope = batch.products
    if scope and product_bid not in scope:
        raise CouponNotApplicable(
            f"Coupon {code!r} is not for this product.", coupon=code, reason="product"
        )
    return batch, code_row


def _caps_check(*, batch: CouponBatch, code: str, code_row: CouponUsage | None) -> None:
    """The code is free and the batch's total not taken, as read: a refusal before
    anything is written. ``_caps_take`` makes sure under the batch's row lock, and checks
    the user's own cap there."""
    if code_row is not None and code_row.status != UsageStatus.AVAILABLE:
        raise _used(code)
    if batch.used_count >= batch.total_count:
        raise _full(batch, code, code_row)


def _full(batch: CouponBatch, code: str, code_row: CouponUsage | None) -> CouponError:
    """The batch's total is taken. A single-use batch's total is its number of codes:
    all are held, this one too."""
    return _used(code) if code_row is not None else _total_reached(batch, code)


def _used(code: str) -> CouponUsed:
    return CouponUsed(f"Coupon {code!r} has been used.", coupon=code)


def _total_reached(batch: CouponBatch, code: str) -> CouponLimitReached:
    return CouponLimitReached(
        f"Coupon {code!r} has been used as often as it may be ({batch.total_count}).",
        coupon=code,
        limit="total",
    )


def _per_user_check(*, batch: CouponBatch, code: str, user_bid: str, own: int = 0) -> None:
    """The user holds fewer uses of the batch than its cap (0: no cap, no query);
    ``own``: uses of this order already written, counted in what the user holds."""
    if not batch.per_user_limit:
        return
    held = selectors.uses_held(coupon_bid=batch.coupon_bid, user_bid=user_bid) - own
    if held >= batch.per_user_limit:
        raise CouponLimitReached(
            f"You have used coupon {code!r} as often as you may ({batch.per_user_limit}).",
            coupon=code,
            limit="per_user",
        )


def discounts_record(
    *, reservation: Reservation, order_bid: str, user_bid: str, product_bid: str
) -> None:
    """Write what ``reservation`` took for the order ``order_bid``: the promotions'
    redemptions and the coupon's reservation, counted against its batch."""
    currency = reservation.quote.currency
    if reservation.campaigns:
        CampaignRedemption.objects.bulk_create(
            CampaignRedemption(
                promo_bid=campaign.promo_bid,
                order_bid=order_bid,
                user_bid=user_bid,
                shifu_bid=product_bid,
                promo_name=campaign.name[:255],
                discount_type=campaign.discount_type,
                value=campaign.value,
                discount_amount=to_major(off, currency),
                currency=currency,
            )
            for campaign, off in reservation.campaigns
        )
    batch = reservation.batch
    if batch is None:
        return
    held = {
        "user_bid": user_bid,
        "shifu_bid": product_bid,
        "order_bid": order_bid,
        "status": UsageStatus.RESERVED,
        "discount_amount": to_major(reservation.coupon_off, currency),
        "currency": currency,
    }
    if reservation.code_row is not None:
        # The batch first, then the code's row, as every service locks them.
        _caps_take(reservation=reservation, user_bid=user_bid)
        taken = CouponUsage.objects.filter(
            pk=reservation.code_row.pk, status=UsageStatus.AVAILABLE
        ).update(**held, updated_at=timezone.now())
        if not taken:  # taken by another order since it was read
            raise _used(reservation.code)
        return
    # A shared code's use is a new row, which nobody else can lock: written before the
    # batch's row is locked, so that the lock is held for as short a time as can be.
    CouponUsage.objects.create(
        coupon_bid=batch.coupon_bid,
        name=batch.name[:255],
        code=reservation.code,
        discount_type=batch.discount_type,
        value=batch.value,
        **held,
    )
    _caps_take(reservation=reservation, user_bid=user_bid, own=1)


def _caps_take(*, reservation: Reservation, user_bid: str, own: int = 0) -> None:
    """Count the use against its batch, if the batch's total allows: the conditional
    update locks the batch's row until the caller's transaction ends, so the user's own
    cap, read next, and the code's row, taken next, cannot change meanwhile. Done last,
    after the order (and a shared code's use) is written, so that the lock is held for as
    short a time as can be. ``own``: this order's use, already written, which the
    user's count includes."""
    batch, code = reservation.batch, reservation.code
    counted = CouponBatch.objects.filter(pk=batch.pk, used_count__lt=F("total_count")).update(
        used_count=F("used_count") + 1
    )
    if not counted:
        raise _full(batch, code, reservation.code_row)
    _per_user_check(batch=batch, code=code, user_bid=user_bid, own=own)


@transaction.atomic
def discounts_use(*, order_bid: str) -> list[str]:
    """The order is paid: its reserved code becomes used, and what an earlier
    cancellation or time-out gave back is taken again (money received is never
    refused). Returns what could not be taken back cleanly, for staff."""
    conflicts = []
    CampaignRedemption.objects.filter(
        order_bid=order_bid, status=RedemptionStatus.VOIDED, deleted=Deleted.ACTIVE
    ).update(status=RedemptionStatus.APPLIED, updated_at=timezone.now())
    batches, held = _locked_uses(order_bid, (UsageStatus.RESERVED, UsageStatus.RELEASED))
    for use in held:
        if use.status == UsageStatus.RESERVED:
            use.status = UsageStatus.USED
            use.save(update_fields=["status", "updated_at"])
            continue
        conflicts += _retake(use, batches.get(use.coupon_bid))
    return conflicts


def batches_lock(*, order_bids: list[str], code: str = "", product_bid: str = "") -> None:
    """Lock, in primary-key order, the batches of the codes ``order_bids`` hold (or gave
    back) and the batch of ``code``: for a transaction that gives back one order's code
    and takes another's, so that two of them never lock two batches in crossed order.
    The caller holds the orders' rows already (orders before batches)."""
    bids = set(
        CouponUsage.objects.filter(
            order_bid__in=order_bids,
            status__in=(*TAKEN, UsageStatus.RELEASED),
            deleted=Deleted.ACTIVE,
        ).values_list("coupon_bid", flat=True)
    )
    extra = []
    if code:
        batch, _ = selectors.coupon_lookup(code, product_bid)
        if batch is not None:
            extra.append(batch.pk)
    _batches_locked(coupon_bids=bids, pks=extra)


def _locked_uses(order_bid: str, statuses) -> tuple[dict[str, CouponBatch], list[CouponUsage]]:
    """The order's uses in ``statuses`` and their batches, locked in the one order every
    service takes them: batches first (as a reservation does), then the uses. Rows are
    found first and locked by primary key: a locking read that scans (small tables are
    scanned, not read through an index) would wait on other orders' rows and deadlock."""
    found = list(
        CouponUsage.objects.filter(order_bid=order_bid, status__in=statuses).values_list(
            "pk", "coupon_bid"
        )
    )
    if not found:
        return {}, []
    batches = {
        batch.coupon_bid: batch for batch in _batches_locked(coupon_bids={bid for _, bid in found})
    }
    uses = CouponUsage.objects.select_for_update().filter(
        pk__in=[pk for pk, _ in found], status__in=statuses
    )
    return batches, list(uses.order_by("pk"))


def _batches_locked(*, coupon_bids=(), pks=()) -> list[CouponBatch]:
    """The batches, locked by primary key, in its order."""
    pks = set(pks) | set(
        CouponBatch.objects.filter(coupon_bid__in=set(coupon_bids)).values_list("pk", flat=True)
    )
    if not pks:
        return []
    return list(CouponBatch.objects.select_for_update().filter(pk__in=pks).order_by("pk"))


def _retake(use: CouponUsage, batch: CouponBatch | None) -> list[str]:
    """A released use of a late-paid order, taken again; any cap it now passes (or the
    single-use code another order holds) is reported."""
    problems = []
    if batch is not None and batch.usage_type == UsageType.SINGLE:
        others = (
            CouponUsage.objects.filter(coupon_bid=use.coupon_bid, code=use.code)
            .exclude(pk=use.pk)
            .values_list("pk", flat=True)
        )
        code_row = (  # locked by primary key (see _locked_uses), then checked
            CouponUsage.objects.select_for_update()
            .filter(pk__in=list(others), deleted=Deleted.ACTIVE)
            .exclude(status=UsageStatus.RELEASED)
            .order_by("pk")
            .first()
        )
        if code_row is not None and code_row.status == UsageStatus.AVAILABLE:
            code_row.delete()  # this order's row holds the code again
        elif code_row is not None:
            problems.append(
                f"single-use coupon {use.code} is also held by order {code_row.order_bid}"
            )
    if batch is not None:
        if batch.used_count >= batch.total_count:
            problems.append(f"coupon {use.code} is now used beyond its total ({batch.total_count})")
        CouponBatch.objects.filter(pk=batch.pk).update(used_count=F("used_count") + 1)
    use.status = UsageStatus.USED
    use.save(update_fields=["status", "updated_at"])
    return problems


@transaction.atomic
def discounts_release(*, order_bid: str, refunded: bool = False) -> None:
    """Give back what the order holds: on cancellation or time-out its reserved code
    and its promotions; on a full refund its used code, where the batch says so."""
    now = timezone.now()
    statuses = (UsageStatus.USED,) if refunded else (UsageStatus.RESERVED,)
    if not refunded:
        CampaignRedemption.objects.filter(
            order_bid=order_bid, status=RedemptionStatus.APPLIED, deleted=Deleted.ACTIVE
        ).update(status=RedemptionStatus.VOIDED, updated_at=now)
    batches, held = _locked_uses(order_bid, statuses)
    for use in held:
        batch = batches.get(use.coupon_bid)
        if refunded and (batch is None or not batch.release_on_refund):
            continue
        if batch is not None and batch.usage_type == UsageType.SINGLE:
            # The code is free again; this order's row stays as its history.
            CouponUsage.objects.create(
                coupon_bid=use.coupon_bid,
                name=use.name,
                code=use.code,
                discount_type=use.discount_type,
                value=use.value,
                status=UsageStatus.AVAILABLE,
            )
        use.status = UsageStatus.RELEASED
        use.save(update_fields=["status", "updated_at"])
        if batch is not None:
            CouponBatch.objects.filter(pk=batch.pk, used_count__gt=0).update(
                used_count=F("used_count") - 1
            )
