"""The staff dashboard: paid amounts, refunds and order counts per day and channel.

Two aggregate queries whatever the number of orders (one over orders, one over
refunds), grouped by day, channel and currency on the indexed ``created_at`` range;
amounts are never added across currencies. The chart is server-rendered SVG.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal

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
PAID = (OrderStatus.PAID, OrderStatus.REFUNDED)

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


def build(params: Mapping[str, str]) -> dict:
    start, end = date_range(params)
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
    rows: dict[tuple, dict] = {}
    for row in orders:
        key = (row["day"], row["payment_channel"], row["currency"])
        rows[key] = {
            "orders": row["orders"],
            "paid_orders": row["paid_orders"],
            "paid": row["paid"] or Decimal("0.00"),
            "refunds": 0,
            "refunded": Decimal("0.00"),
        }
    for row in refunds:
        key = (row["day"], row["payment_channel"], row["currency"])
        entry = rows.setdefault(
            key,
            {"orders": 0, "paid_orders": 0, "paid": Decimal("0.00")},
        )
        entry["refunds"] = row["refunds"]
        entry["refunded"] = row["refunded"] or Decimal("0.00")
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
