"""Realistic rows of the old system's four promo tables, bound to legacy orders.

``legacy_promo_rows(orders)`` takes orders of the legacy order fixture as they were
loaded (``ORDER_COLUMNS`` read back from ``order_orders``, in id order) and returns the
INSERT statements for ``legacy_promo.mysql.sql``, with what they mean: the discounts the
migrations must record and the codes worth trying. Deterministic for given orders and
seed. Every INSERT names every column: the tables have no database defaults.

How the old system (ai-shifu ``service/order/coupon_funcs.py``, ``order/funs.py``,
``promo/funcs.py``) wrote these rows, and so what they look like here:

- A shared batch (usage_type 801) holds its code. Each use is a new usage row made when
  the code is applied, without a name, bound to the order, user and course, status 903
  at once (before payment); a time-out puts it back to 902, order and user kept.
- A single-use batch (802) has one usage row per code, made with the batch: status 902,
  no order, no user. A use binds the row (903); a time-out puts it back to 902.
- An automatic campaign (2101) gives each order of its course in its window a
  redemption (4101), voided (4102) when the order times out.
- Campaigns and coupon add up, each on the list price: a campaign's share is a
  percentage of ``payable_price`` rounded half up to 0.01 (or its fixed value), the
  coupon's a percentage or fixed value; ``paid_price`` is ``payable_price`` less their
  sum (never below 0), stored rounded half up to 0.01.
- Applying a percent code went through ``use_coupon_code``, which took off
  ``payable_price * value`` (no division by 100): the order fell to 0.00 and was marked
  paid at once. Some free paid orders here carry such a 20 % code.

The order fixture discounts every 7th order by 20 % and every 41st by 100 %; the rows
here explain most of those discounts (a few 20 % orders have none: a manual price), and
the schemes are chosen so that the old arithmetic gives exactly the fixture's
``paid_price``.
"""

from __future__ import annotations

import json
import random
import string
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

# What to read back from order_orders (ORDER BY id) and pass to legacy_promo_rows.
ORDER_COLUMNS = "order_bid, shifu_bid, user_bid, payable_price, paid_price, status, created_at"

PAID, REFUNDED, TIMEOUT = 502, 503, 505
FIXED, PERCENT = 701, 702
SHARED, SINGLE = 801, 802
CODE_INACTIVE, CODE_ACTIVE, CODE_USED, CODE_TIMEOUT = 901, 902, 903, 904
APPLIED, VOIDED = 4101, 4102
AUTO, MANUAL = 2101, 2103

COUPON_COLUMNS = (
    "coupon_bid, name, code, discount_type, usage_type, `value`, `start`, `end`, channel, "
    "`filter`, total_count, used_count, status, deleted, created_at, created_user_bid, "
    "updated_at, updated_user_bid"
)
USAGE_COLUMNS = (
    "coupon_usage_bid, coupon_bid, name, user_bid, shifu_bid, order_bid, code, discount_type, "
    "`value`, status, deleted, created_at, updated_at"
)
PROMO_COLUMNS = (
    "promo_bid, shifu_bid, name, description, apply_type, status, start_at, end_at, "
    "discount_type, `value`, channel, `filter`, deleted, created_at, created_user_bid, "
    "updated_at, updated_user_bid"
)
REDEMPTION_COLUMNS = (
    "redemption_bid, promo_bid, order_bid, user_bid, shifu_bid, promo_name, discount_type, "
    "`value`, discount_amount, status, deleted, created_at, updated_at"
)

CENT = Decimal("0.01")
FOREVER = datetime(2099, 12, 31, 23, 59, 59)  # what the old operators typed for "no end"
ALL_COURSES = json.dumps({"course_id": ""})  # what the old admin writes for every course
CODE_ALPHABET = string.ascii_uppercase + string.digits


def q(value) -> str:
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, datetime):
        return "'" + value.strftime("%Y-%m-%d %H:%M:%S") + "'"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def bid(rng: random.Random) -> str:
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def percent_of(price: Decimal, value: Decimal) -> Decimal:
    """A percentage of a price as the old campaigns computed it: half up to 0.01."""
    return (price * value / 100).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class LegacyOrder:
    order_bid: str
    shifu_bid: str
    user_bid: str
    payable: Decimal
    paid: Decimal
    status: int
    created_at: datetime


@dataclass
class Batch:
    coupon_bid: str
    name: str
    code: str
    discount_type: int
    usage_type: int
    value: Decimal
    start: datetime
    end: datetime
    filter: str
    total_count: int
    created_at: datetime
    author: str
    channel: str = ""
    status: int = 1
    deleted: int = 0
    used_count: int = 0
    codes: list[Usage] = field(default_factory=list)  # a single-use batch's code rows

    def row(self) -> tuple:
        return (
            self.coupon_bid, self.name, self.code, self.discount_type, self.usage_type,
            self.value, self.start, self.end, self.channel, self.filter, self.total_count,
            self.used_count, self.status, self.deleted, self.created_at, self.author,
            self.created_at + timedelta(minutes=3), self.author,
        )  # fmt: skip


@dataclass
class Usage:
    coupon_usage_bid: str
    batch: Batch
    code: str
    name: str = ""
    user_bid: str = ""
    shifu_bid: str = ""
    order_bid: str = ""
    status: int = CODE_ACTIVE
    deleted: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def row(self) -> tuple:
        b = self.batch
        return (
            self.coupon_usage_bid, b.coupon_bid, self.name, self.user_bid, self.shifu_bid,
            self.order_bid, self.code, b.discount_type, b.value, self.status, self.deleted,
            self.created_at, self.updated_at,
        )  # fmt: skip


@dataclass
class Campaign:
    promo_bid: str
    shifu_bid: str
    name: str
    discount_type: int
    value: Decimal
    start_at: datetime
    end_at: datetime
    author: str
    status: int = 1
    apply_type: int = AUTO
    deleted: int = 0
    description: str = ""
    filter: str = "{}"

    def row(self) -> tuple:
        created = self.start_at - timedelta(days=3)
        return (
            self.promo_bid, self.shifu_bid, self.name, self.description, self.apply_type,
            self.status, self.start_at, self.end_at, self.discount_type, self.value, "",
            self.filter, self.deleted, created, self.author, created, self.author,
        )  # fmt: skip

    def live(self, when: datetime) -> bool:
        return self.start_at <= when < self.end_at


@dataclass
class Redemption:
    redemption_bid: str
    campaign: Campaign
    order: LegacyOrder
    discount_amount: Decimal
    status: int

    def row(self) -> tuple:
        c, o = self.campaign, self.order
        return (
            self.redemption_bid, c.promo_bid, o.order_bid, o.user_bid, o.shifu_bid, c.name,
            c.discount_type, c.value, self.discount_amount, self.status, 0, o.created_at,
            o.created_at + timedelta(minutes=30 if self.status == VOIDED else 1),
        )  # fmt: skip


@dataclass
class LegacyPromos:
    """The rows' SQL and what they mean."""

    sql: str
    # order_bid -> the discount_price orders 0016 must record (paid or refunded orders
    # with a live used code or applied redemption); every other order keeps 0.00.
    discounts: dict[str, Decimal]
    # coupon_usage_bid -> the discount_amount orders 0016 must record; others keep 0.00.
    coupon_amounts: dict[str, Decimal]
    # Codes worth trying against the service: see legacy_promo_rows.
    codes: dict[str, str]
    course_fixed_value: Decimal  # what codes["course_fixed"] takes off
    plain_shifu: str  # a course with no campaign in force (a paused one, a deleted one...)
    campaign_shifu: str  # a course with a 10 % automatic campaign in force
    operator_shifu: str  # a course with a 5 % campaign switched "off" by a legacy operator
    counts: dict[str, int]


def _old_paid(order: LegacyOrder, campaigns: Sequence[Campaign], coupon: Batch | None) -> Decimal:
    """``paid_price`` as the old ``_sync_order_campaign_pricing`` left it."""
    off = sum(
        (c.value if c.discount_type == FIXED else percent_of(order.payable, c.value))
        for c in campaigns
    )
    if coupon is not None:
        off += (
            coupon.value
            if coupon.discount_type == FIXED
            else order.payable * coupon.value / 100  # not rounded: the column rounds paid
        )
    return (order.payable - min(off, order.payable)).quantize(CENT, ROUND_HALF_UP)


def _insert(table: str, columns: str, rows: list[tuple]) -> str:
    statements = []
    for start in range(0, len(rows), 500):
        values = ",\n".join(
            "(" + ", ".join(q(v) for v in row) + ")" for row in rows[start : start + 500]
        )
        statements.append(f"INSERT INTO {table} ({columns}) VALUES\n{values};")
    return "\n".join(statements)


def legacy_promo_rows(orders: Iterable[Sequence], seed: int = 7) -> LegacyPromos:
    """The promo rows of the legacy ``orders`` (rows of ``ORDER_COLUMNS``).

    ``codes`` names: ``shared_percent`` (15 % off any course, a legacy operator's batch
    with status 0), ``single_free`` (a single-use 20 % code nobody holds),
    ``single_used`` (a single-use code used by a paid order), ``course_fixed`` (a fixed
    discount on ``plain_shifu`` only), ``other_course`` (a fixed discount on
    ``campaign_shifu`` only).
    """
    rng = random.Random(seed)  # noqa: S311 - fixture data, deterministic on purpose
    legacy = [
        LegacyOrder(str(o[0]), str(o[1]), str(o[2]), Decimal(o[3]), Decimal(o[4]), int(o[5]), o[6])
        for o in orders
    ]
    prices = {o.shifu_bid: o.payable for o in legacy}

    def fifth(o: LegacyOrder) -> bool:  # 20 % off: every 7th order of the fixture
        return 0 < o.paid < o.payable and o.payable - o.paid == percent_of(o.payable, 20)

    busy = Counter(o.shifu_bid for o in legacy if fifth(o))
    ranked = sorted(prices, key=lambda s: (-busy[s], s))
    assert len(ranked) >= 3, "the orders need at least three courses"
    campaign_shifu, operator_shifu, plain_shifu = ranked[:3]
    admin, ops = bid(rng), bid(rng)
    batches: list[Batch] = []

    def batch(name, code, kind, value, start, end, filter_, total, **more) -> Batch:
        made = Batch(
            coupon_bid=bid(rng),
            name=name,
            code=code,
            discount_type=kind,
            usage_type=more.pop("usage_type", SHARED),
            value=Decimal(value).quantize(CENT),
            start=start,
            end=end,
            filter=filter_,
            total_count=total,
            created_at=start - timedelta(days=2, hours=rng.randrange(24)),
            author=more.pop("author", admin),
            **more,
        )
        batches.append(made)
        return made

    def single(name, kind, value, start, end, filter_, count) -> Batch:
        made = batch(name, "", kind, value, start, end, filter_, count, usage_type=SINGLE)
        made.codes = [
            Usage(
                coupon_usage_bid=bid(rng),
                batch=made,
                code="".join(rng.choice(CODE_ALPHABET) for _ in range(10)),
                name=name,
                created_at=made.created_at,
                updated_at=made.created_at,
            )
            for _ in range(count)
        ]
        return made

    jan = datetime(2024, 1, 1)
    spring = batch("春季八折", "SPRING20", PERCENT, 20, jan, FOREVER, "{}", 5000)
    vip = batch("老学员加码 9折", "VIP10", PERCENT, 10, jan, FOREVER, "", 2000, author=ops)
    # Written by hand by an operator of the old system: no author, status 0. The old
    # code (and this service) treats such a batch as enabled.
    legacy15 = batch("早鸟85折", "LEGACY15", PERCENT, 15, jan, FOREVER, "{}", 100000, status=0)
    legacy15.author = ""
    free100 = batch("内部体验码", "FREE100", PERCENT, 100, jan, FOREVER, ALL_COURSES, 200)
    gift = batch("合作方兑换", "GIFT1000", FIXED, 1000, jan, FOREVER, ALL_COURSES, 500)
    gift.channel = "partner"
    batch("新年七折", "NEWYEAR24", PERCENT, 30, jan, datetime(2024, 2, 29, 23, 59, 59), "{}", 300)
    batch("测试码", "TEST01", FIXED, "1.00", jan, FOREVER, "", 10, deleted=1)
    course_fixed = {
        shifu: batch(
            f"课程立减{percent_of(price, 20)}元",
            "KC" + shifu[:8].upper(),
            FIXED,
            percent_of(price, 20),
            datetime(2024, 2, 1),
            FOREVER,
            json.dumps({"course_id": shifu}),
            1000,
        )
        for shifu, price in sorted(prices.items())
    }
    n_codes = max(60, len(legacy) // 5)
    single20 = single("渠道一单一码 8折", PERCENT, 20, datetime(2024, 3, 1), FOREVER, "{}", n_codes)
    live_stream = datetime(2025, 6, 1)
    single("直播间立减20元", FIXED, 20, live_stream, FOREVER, ALL_COURSES, 20)  # none used yet
    single20.codes[-1].status = CODE_INACTIVE  # switched off by hand
    single20.codes[-2].status = CODE_TIMEOUT
    free_codes = [u for u in single20.codes if u.status == CODE_ACTIVE]

    def campaign(shifu, name, kind, value, start, end, **more) -> Campaign:
        return Campaign(bid(rng), shifu, name, kind, Decimal(value).quantize(CENT), start, end,
                        more.pop("author", admin), **more)  # fmt: skip

    op_price = prices[operator_shifu]
    annual = campaign(campaign_shifu, "2024 年度特惠 8折", PERCENT, 20, jan,
                      datetime(2025, 1, 1), description="全年有效")  # fmt: skip
    loyal = campaign(campaign_shifu, "老学员专享 9折", PERCENT, 10, datetime(2025, 1, 1), FOREVER)
    cut = campaign(operator_shifu, f"限时立减{percent_of(op_price, 20)}元", FIXED,
                   percent_of(op_price, 20), jan, datetime(2025, 2, 1), author=ops)  # fmt: skip
    # Switched "off" by a legacy operator (status 0, no author): in force all the same.
    opening = campaign(operator_shifu, "开学季 95折", PERCENT, 5, datetime(2025, 2, 1), FOREVER,
                       status=0, author="")  # fmt: skip
    anniversary = campaign(plain_shifu, "周年庆 8折", PERCENT, 20, jan, datetime(2025, 6, 1))
    campaigns = [
        annual,
        loyal,
        cut,
        opening,
        anniversary,
        campaign(plain_shifu, "暂停的活动", PERCENT, 50, jan, FOREVER, status=0),
        campaign(plain_shifu, "已删除活动", PERCENT, 50, jan, FOREVER, deleted=1),
        campaign(plain_shifu, "客服手动发放", PERCENT, 30, jan, FOREVER, apply_type=MANUAL),
    ]
    # The automatic campaigns that took a 20 % order's discount, with the code that
    # went with them (each on the list price, added up).
    schemes = [
        (annual, None),
        (loyal, vip),
        (cut, None),
        (opening, legacy15),
        (anniversary, None),
    ]

    usages: list[Usage] = []  # shared codes' uses, in order of use
    redemptions: list[Redemption] = []

    def bind(o: LegacyOrder, on: list[Campaign], coupon: Batch | None, **usage) -> None:
        timed_out = o.status == TIMEOUT
        for c in on:
            share = c.value if c.discount_type == FIXED else percent_of(o.payable, c.value)
            redemptions.append(Redemption(bid(rng), c, o, share, VOIDED if timed_out else APPLIED))
        if coupon is None:
            return
        coupon.used_count += 1
        if coupon.usage_type == SINGLE:
            use = free_codes.pop(0)
        else:
            use = Usage(bid(rng), coupon, coupon.code, created_at=o.created_at)
            usages.append(use)
        use.user_bid, use.order_bid, use.shifu_bid = o.user_bid, o.order_bid, o.shifu_bid
        use.status = CODE_ACTIVE if timed_out else CODE_USED
        use.updated_at = o.created_at + timedelta(minutes=30 if timed_out else 1)
        for name, value in usage.items():
            setattr(use, name, value)

    cycle = 0
    soft_deleted = False
    for o in legacy:
        if o.paid == 0 < o.payable:
            # Made free by a code: the 100 % code, the partner's fixed code, or a 20 %
            # code through the old use_coupon_code (see above).
            bind(o, [], (free100, gift, spring)[cycle % 3])
            cycle += 1
            continue
        if not fifth(o):
            continue
        on: list[Campaign] = []
        coupon: Batch | None = None
        for c, with_code in schemes:
            if o.shifu_bid == c.shifu_bid and c.live(o.created_at):
                on, coupon = [c], with_code
                break
        if not on:
            slot = cycle % 7
            cycle += 1
            coupon = (spring, single20, course_fixed[o.shifu_bid])[slot % 3]
            if coupon is single20 and not free_codes:
                coupon = spring
            if slot == 6:
                # A price lowered by hand: no live promo row explains it. The first such
                # paid order has a use of a code that an operator soft-deleted since.
                if not soft_deleted and o.status in (PAID, REFUNDED):
                    bind(o, [], spring, deleted=1)
                    soft_deleted = True
                continue
        if _old_paid(o, on, coupon) != o.paid:
            on, coupon = [], spring
        assert _old_paid(o, on, coupon) == o.paid
        bind(o, on, coupon)

    # The code rows of single-use batches were made with their batch; the uses of
    # shared codes follow, in order of use.
    usages.sort(key=lambda u: u.created_at)
    redemptions.sort(key=lambda r: r.order.created_at)
    all_usages = [u for b in batches for u in b.codes] + usages

    # What orders 0016 must record: the paid and refunded orders with a live used code
    # or applied redemption; the code's share is what the promotions left.
    discounts: dict[str, Decimal] = {}
    coupon_amounts: dict[str, Decimal] = {}
    for o in legacy:
        if o.status not in (PAID, REFUNDED) or not 0 <= o.paid <= o.payable:
            continue
        used = [
            u
            for u in all_usages
            if u.order_bid == o.order_bid and u.status == CODE_USED and not u.deleted
        ]
        applied = [r.discount_amount for r in redemptions if r.order is o and r.status == APPLIED]
        if not used and not applied:
            continue
        discount = o.payable - o.paid
        if discount:
            discounts[o.order_bid] = discount
        if used and discount - sum(applied) > 0:
            coupon_amounts[used[0].coupon_usage_bid] = discount - sum(applied)

    used_single = [
        u.code for u in single20.codes if u.status == CODE_USED and u.order_bid in discounts
    ]
    assert free_codes and used_single, "too few orders for the single-use codes"
    sql = "\n".join(
        [
            _insert("promo_coupons", COUPON_COLUMNS, [b.row() for b in batches]),
            _insert("promo_coupon_usages", USAGE_COLUMNS, [u.row() for u in all_usages]),
            _insert("promo_promos", PROMO_COLUMNS, [c.row() for c in campaigns]),
            _insert("promo_redemptions", REDEMPTION_COLUMNS, [r.row() for r in redemptions]),
        ]
    )
    return LegacyPromos(
        sql=sql + "\n",
        discounts=discounts,
        coupon_amounts=coupon_amounts,
        codes={
            "shared_percent": legacy15.code,
            "single_free": free_codes[0].code,
            "single_used": used_single[0],
            "course_fixed": course_fixed[plain_shifu].code,
            "other_course": course_fixed[campaign_shifu].code,
        },
        course_fixed_value=course_fixed[plain_shifu].value,
        plain_shifu=plain_shifu,
        campaign_shifu=campaign_shifu,
        operator_shifu=operator_shifu,
        counts={
            "promo_coupons": len(batches),
            "promo_coupon_usages": len(all_usages),
            "promo_promos": len(campaigns),
            "promo_redemptions": len(redemptions),
        },
    )
