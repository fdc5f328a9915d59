"""The staff dashboard: paid amounts, refunds and order counts per day and channel.

Two aggregate queries whatever the number of orders (one over orders, one over
refunds), grouped by day, channel and currency on the indexed ``created_at`` range;
amounts are never added across currencies. The chart is server-rendered SVG. Rows
the database cannot place on a day are counted and the page says so, never dropped
unseen.

The figures of a closed day (before today) are kept in the cache for
``CLOSED_DAY_SECONDS``, so the page costs the same on a million orders as on a thousand:
only the days not in the cache, at least today, are aggregated. A status
change of an order, or a refund settled, on an order of a closed day forgets that day
in the cache once it commits (``day_forget``); it shows on the next view where the
cache is shared (CACHE_URL on Redis), else, like a write by another system, within
``CLOSED_DAY_SECONDS``.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from orders.models import (
    Attention,
    AttentionKind,
    AttentionStatus,
    Order,
    OrderStatus,
    Refund,
    RefundStatus,
)

DEFAULT_DAYS = 30
MAX_DAYS = 366
# Money received: refunded and revoked orders were paid too (their refunds are counted
# apart).
PAID = (OrderStatus.PAID, OrderStatus.REFUNDED, OrderStatus.REVOKED)

# How long a closed day's figures are kept; today's are always aggregated.
CLOSED_DAY_SECONDS = 600
LIVE_DAYS = 1

CHART_HEIGHT = 160
BAR_WIDTH = 14
BAR_GAP = 4


def _date(value: str | None, default: datetime.date) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value) if value else default
    except ValueError:
        return default


def date_range(params: Mapping[str, str]) -> tuple[datetime.date, datetime.date]:
    """``start`` and ``end`` (inclusive, ISO dates) from GET; the last 30 days by default."""
    today = timezone.localdate()
    end = _date(params.get("end"), today)
    start = _date(params.get("start"), end - datetime.timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        start, end = end, start
    start = max(start, end - datetime.timedelta(days=MAX_DAYS - 1))
    return start, end


def _bounds(start: datetime.date, end: datetime.date):
    tz = timezone.get_current_timezone()
    low = datetime.datetime.combine(start, datetime.time.min, tzinfo=tz)
    high = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz)
    return low, high


def _day_key(day: datetime.date) -> str:
    return f"orders:dashboard:day:{timezone.get_current_timezone_name()}:{day.isoformat()}"


def day_forget(moment: datetime.datetime) -> None:
    """Forget the cached figures of the day of ``moment`` (an order's or a refund's
    ``created_at``), if it is a closed day, once the caller's transaction commits: what
    changed is counted on the day's next view."""
    day = timezone.localdate(moment)
    if day <= timezone.localdate() - datetime.timedelta(days=LIVE_DAYS):
        transaction.on_commit(lambda: cache.delete(_day_key(day)))


def _aggregate(start: datetime.date, end: datetime.date) -> tuple[dict[datetime.date, dict], int]:
    """Per day from ``start`` to ``end`` (inclusive): {(channel, currency): figures};
    and how many rows the database could not place on a day (MySQL without its
    time-zone tables, with DATABASE_TIME_ZONE other than TIME_ZONE, gives NULL)."""
    low, high = _bounds(start, end)
    orders = (
        Order.objects.filter(created_at__gte=low, created_at__lt=high)
        .annotate(day=TruncDate("created_at"))
        .values("day", "payment_channel", "currency")
        .annotate(
            orders=Count("id"),
            paid_orders=Count("id", filter=Q(status__in=PAID)),
            paid=Sum("paid_price", filter=Q(status__in=PAID)),
        )
        .order_by("day", "payment_channel", "currency")
    )
    refunds = (
        Refund.objects.filter(
            created_at__gte=low, created_at__lt=high, status=RefundStatus.SUCCEEDED
        )
        .annotate(day=TruncDate("created_at"))
        .values("day", "payment_channel", "currency")
        .annotate(refunds=Count("id"), refunded=Sum("amount"))
        .order_by("day", "payment_channel", "currency")
    )
    days: dict[datetime.date, dict] = {
        start + datetime.timedelta(days=n): {} for n in range((end - start).days + 1)
    }
    undated = 0
    for row in orders:
        if row["day"] not in days:
            undated += row["orders"]
            continue
        days[row["day"]][(row["payment_channel"], row["currency"])] = {
            "orders": row["orders"],
            "paid_orders": row["paid_orders"],
            "paid": row["paid"] or Decimal("0.00"),
            "refunds": 0,
            "refunded": Decimal("0.00"),
        }
    for row in refunds:
        if row["day"] not in days:
            undated += row["refunds"]
            continue
        entry = days[row["day"]].setdefault(
            (row["payment_channel"], row["currency"]),
            {"orders": 0, "paid_orders": 0, "paid": Decimal("0.00")},
        )
        entry["refunds"] = row["refunds"]
        entry["refunded"] = row["refunded"] or Decimal("0.00")
    return days, undated


def figures(start: datetime.date, end: datetime.date) -> tuple[dict[datetime.date, dict], int]:
    """The days' figures: closed days from the cache where it has them, the others
    aggregated in one pass over the range they span, and the closed ones kept (unless
    some rows could not be placed on a day: their count is returned)."""
    closed_until = timezone.localdate() - datetime.timedelta(days=LIVE_DAYS)
    all_days = [start + datetime.timedelta(days=n) for n in range((end - start).days + 1)]
    closed = [day for day in all_days if day <= closed_until]
    cached = cache.get_many([_day_key(day) for day in closed])
    days = {day: cached[_day_key(day)] for day in closed if _day_key(day) in cached}
    missing = [day for day in all_days if day not in days]
    undated = 0
    if missing:
        fresh, undated = _aggregate(min(missing), max(missing))
        days.update({day: fresh[day] for day in missing})
        if not undated:
            cache.set_many(
                {_day_key(day): fresh[day] for day in missing if day <= closed_until},
                CLOSED_DAY_SECONDS,
            )
    return days, undated


def build(params: Mapping[str, str]) -> dict:
    start, end = date_range(params)
    days, undated = figures(start, end)
    rows: dict[tuple, dict] = {
        (day, channel, currency): values
        for day, per_day in days.items()
        for (channel, currency), values in per_day.items()
    }
    table = [
        {"day": day, "channel": channel, "currency": currency.upper(), **values}
        for (day, channel, currency), values in sorted(rows.items())
    ]
    totals: dict[str, dict] = defaultdict(
        lambda: {"paid": Decimal("0.00"), "refunded": Decimal("0.00"), "orders": 0}
    )
    per_day: dict[str, dict[datetime.date, Decimal]] = defaultdict(dict)
    for row in table:
        total = totals[row["currency"]]
        total["paid"] += row["paid"]
        total["refunded"] += row["refunded"]
        total["orders"] += row["orders"]
        days = per_day[row["currency"]]
        days[row["day"]] = days.get(row["day"], Decimal("0.00")) + row["paid"]
    all_days = [start + datetime.timedelta(days=n) for n in range((end - start).days + 1)]
    charts = [
        {"currency": currency, "svg": bar_chart(all_days, per_day[currency], currency)}
        for currency in sorted(per_day)
    ]
    attention = dict(
        Attention.objects.filter(status=AttentionStatus.OPEN)
        .values_list("kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {
        "start": start,
        "end": end,
        "undated": undated,
        "attention_open": sum(attention.values()),
        "attention": [(label, attention.get(kind, 0)) for kind, label in AttentionKind.choices],
        "rows": table,
        "totals": sorted(totals.items()),
        "charts": charts,
    }


def bar_chart(days: list[datetime.date], values: Mapping, currency: str) -> SafeString:
    """Paid amount per day, one bar a day, as an inline SVG."""
    top = max(values.values(), default=Decimal("0")) or Decimal("1")
    width = len(days) * (BAR_WIDTH + BAR_GAP) + BAR_GAP
    bars = []
    for index, day in enumerate(days):
        value = values.get(day, Decimal("0"))
        height = int(value / top * (CHART_HEIGHT - 20))
        x = BAR_GAP + index * (BAR_WIDTH + BAR_GAP)
        bars.append(
            (
                x,
                CHART_HEIGHT - height,
                BAR_WIDTH,
                height,
                f"{day.isoformat()}: {value} {currency}",
            )
        )
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#417690"><title>{}</title></rect>',
        bars,
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img" '
        'aria-label="Paid {} per day"><text x="4" y="12" font-size="11">max {} {}</text>'
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#999"/>{}</svg>',
        width,
        CHART_HEIGHT + 1,
        currency,
        top,
        currency,
        CHART_HEIGHT,
        width,
        CHART_HEIGHT,
        rects,
    )
