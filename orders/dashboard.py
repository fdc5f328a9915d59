"""The staff dashboard: money received and refunded per currency and day, conversion,
and what needs staff.

What is counted, per currency (amounts are never added across currencies), per day:

- **paid**: the money of the orders paid that day, by the day of their payment, not of
  their creation. The day of a payment is that of the order's first history line to
  ``paid`` from a payable status (``PAID_FROM``), as ``orders.selectors`` reads
  ``paid_at``; the line a refund that failed after succeeding writes (refunded back to
  paid) is no new money and is not counted. The amount is the order's ``paid_price``.
- Orders the old system (or the platform's own Alipay / WeChat Pay) paid have no such
  line in this service's history: they are counted on the day they were **created**,
  the nearest day known of a payment made within minutes of its order (their
  ``updated_at`` moves with any later change, a refund included, so it is not used).
  The page says how many of the period's paid orders are counted so.
- **refunded**: refunds that succeeded, on the day they did (``Refund.settled_at``), in
  the refund's currency. Refunds of a duplicate payment (``duplicate_payment``: a second
  payment of an order already paid, given back) are left out: that payment is not in
  the order's ``paid_price``, so its refund is not taken off what was received either.
- **net**: paid less refunded; **refund rate**: refunded / paid over the period;
  **conversion**: orders paid / orders created, each counted on its own day.
- Grants (channel ``grant``, given by the platform at no cost) are not sales: they are
  in none of these figures. Soft-deleted orders are: their money moved.

Aggregation happens in the database, a constant number of queries whatever the number
of days or orders, each a range scan on an index: first payments on
``order_events (to_status, created_at, from_status, order_id)`` joined to their orders
by primary key; orders created on ``order_orders (created_at)``; orders paid without a
history line on ``(status, created_at)``; refunds on ``order_refunds (status,
settled_at)``. Sums come back quantized to the stored places (the columns are
DECIMAL(10,2)): exact on every database, SQLite's float sums included.

The figures of a closed day (before today) are kept in the cache for
``CLOSED_DAY_SECONDS``: only the days not in the cache, at least today, are aggregated.
What this service changes lands on today, which is never cached (a payment, a refund
that succeeds; a status change moves no order in or out of its creation day's
figures), except a refund that fails after succeeding: it forgets the day it had
succeeded on once it commits (``day_forget``). A write by another system to a closed
day shows within ``CLOSED_DAY_SECONDS``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import dateformat, timezone

from orders.models import (
    ApprovalStatus,
    Attention,
    AttentionKind,
    AttentionStatus,
    Order,
    OrderEvent,
    OrderStatus,
    Refund,
    RefundApproval,
    RefundStatus,
)
from payments_project.money import STORED_PLACES, format_money

PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366

S = OrderStatus
# The statuses an order is paid from (orders.services.lifecycle.TRANSITIONS; a test
# keeps the two the same): a history line from one of them to paid is a payment.
PAID_FROM = (S.INIT, S.UNPAID, S.TIMEOUT, S.CANCELLED)
# Orders that were paid: refunded and revoked ones too (their refunds count apart).
PAID_STATUSES = (S.PAID, S.REFUNDED, S.REVOKED)
# Channels whose orders are no sales.
NOT_SALES = ("grant",)

# How long a closed day's figures are kept; today's are always aggregated.
CLOSED_DAY_SECONDS = 600
LIVE_DAYS = 1
CACHE_VERSION = 2

ZERO = Decimal("0.00")
FIGURES = ("created", "paid_orders", "paid", "refunds", "refunded", "paid_unrecorded")
AMOUNTS = frozenset({"paid", "refunded"})  # the money among them; the rest are counts


# ---- the period ----


def _date(value: str | None) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def period(params: Mapping[str, str]) -> tuple[datetime.date, datetime.date, int | None]:
    """The days shown, from GET: ``days`` (7, 30 or 90; 30 by default) up to today, or
    ``start`` and ``end`` (inclusive ISO dates, at most ``MAX_DAYS`` apart) as before.
    Returns (start, end, the ``days`` chosen or None for a range of dates)."""
    today = timezone.localdate()
    start, end = _date(params.get("start")), _date(params.get("end"))
    if start is None and end is None:
        try:
            days = int(params.get("days", DEFAULT_DAYS))
        except ValueError:
            days = DEFAULT_DAYS
        days = days if days in PERIODS else DEFAULT_DAYS
        return today - datetime.timedelta(days=days - 1), today, days
    end = end or today
    start = start or end - datetime.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start, end = end, start
    return max(start, end - datetime.timedelta(days=MAX_DAYS - 1)), end, None


def _days(start: datetime.date, end: datetime.date) -> list[datetime.date]:
    return [start + datetime.timedelta(days=n) for n in range((end - start).days + 1)]


def _bounds(start: datetime.date, end: datetime.date) -> tuple[datetime.datetime, ...]:
    tz = timezone.get_current_timezone()
    low = datetime.datetime.combine(start, datetime.time.min, tzinfo=tz)
    high = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz)
    return low, high


# ---- the figures ----


def _first_payments(**where: Any) -> QuerySet[OrderEvent]:
    """History lines that record an order's payment (one an order at most)."""
    return OrderEvent.objects.filter(to_status=S.PAID, from_status__in=PAID_FROM, **where)


def _exact(amount: Decimal | None) -> Decimal:
    """A database sum of stored amounts, exact: the columns have two places, and SQLite
    sums DECIMAL as floats (29.9000000000000)."""
    return Decimal(amount or 0).quantize(STORED_PLACES)


def _blank() -> dict[str, Any]:
    return {name: ZERO if name in AMOUNTS else 0 for name in FIGURES}


def _aggregate(start: datetime.date, end: datetime.date) -> tuple[dict[datetime.date, dict], int]:
    """Per day from ``start`` to ``end`` (inclusive): {currency: figures}; and how many
    rows the database could not place on a day (MySQL without its time-zone tables,
    with DATABASE_TIME_ZONE other than TIME_ZONE, gives NULL). Four queries."""
    low, high = _bounds(start, end)
    payments = (
        _first_payments(created_at__gte=low, created_at__lt=high)
        .exclude(order__payment_channel__in=NOT_SALES)
        .annotate(day=TruncDate("created_at"), currency=F("order__currency"))
        .values("day", "currency")
        .annotate(n=Count("id"), amount=Sum("order__paid_price"))
        .order_by()
    )
    orders = Order.objects.filter(created_at__gte=low, created_at__lt=high).exclude(
        payment_channel__in=NOT_SALES
    )
    created = (
        orders.annotate(day=TruncDate("created_at"))
        .values("day", "currency")
        .annotate(n=Count("id"))
        .order_by()
    )
    # No order is paid before it is created: only lines since the period's first day
    # (less a day of clock skew between the old system and this one) are looked at.
    since = low - datetime.timedelta(days=1)
    unrecorded = (
        orders.filter(status__in=PAID_STATUSES)
        .filter(~Exists(_first_payments(order=OuterRef("pk"), created_at__gte=since)))
        .annotate(day=TruncDate("created_at"))
        .values("day", "currency")
        .annotate(n=Count("id"), amount=Sum("paid_price"))
        .order_by()
    )
    refunds = (
        Refund.objects.filter(
            status=RefundStatus.SUCCEEDED,
            duplicate_payment=False,
            settled_at__gte=low,
            settled_at__lt=high,
        )
        .annotate(day=TruncDate("settled_at"))
        .values("day", "currency")
        .annotate(n=Count("id"), amount=Sum("amount"))
        .order_by()
    )
    days: dict[datetime.date, dict] = {day: {} for day in _days(start, end)}
    undated = 0

    def add(rows, counts: tuple[str, ...], amount: str | None = None) -> None:
        nonlocal undated
        for row in rows:
            if row["day"] not in days:
                undated += row["n"]
                continue
            entry = days[row["day"]].setdefault(row["currency"].lower(), _blank())
            for count in counts:
                entry[count] += row["n"]
            if amount:
                entry[amount] += _exact(row["amount"])

    add(payments, ("paid_orders",), "paid")
    add(created, ("created",))
    add(unrecorded, ("paid_orders", "paid_unrecorded"), "paid")
    add(refunds, ("refunds",), "refunded")
    return days, undated


def _day_key(day: datetime.date) -> str:
    zone = timezone.get_current_timezone_name()
    return f"orders:dashboard:v{CACHE_VERSION}:day:{zone}:{day.isoformat()}"


def day_forget(moment: datetime.datetime | None) -> None:
    """Forget the cached figures of the day of ``moment`` (when a refund that has now
    failed had succeeded), if it is a closed day, once the caller's transaction
    commits: what changed is counted on the day's next view."""
    if moment is None:
        return
    day = timezone.localdate(moment)
    if day <= timezone.localdate() - datetime.timedelta(days=LIVE_DAYS):
        transaction.on_commit(lambda: cache.delete(_day_key(day)))


def figures(start: datetime.date, end: datetime.date) -> tuple[dict[datetime.date, dict], int]:
    """The days' figures: closed days from the cache where it has them, the others
    aggregated in one pass over the range they span, and the closed ones kept (unless
    some rows could not be placed on a day: their count is returned)."""
    closed_until = timezone.localdate() - datetime.timedelta(days=LIVE_DAYS)
    all_days = _days(start, end)
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


# ---- what the page shows ----


def ratio(part: Decimal | int, whole: Decimal | int) -> str | None:
    """``part`` / ``whole`` as a percentage with one decimal ("12.5%"); None when
    ``whole`` is nothing."""
    if not whole:
        return None
    return f"{(Decimal(part) * 100 / Decimal(whole)).quantize(Decimal('0.1'))}%"


def _shown(currency: str, values: dict[str, Any]) -> dict[str, Any]:
    """A currency's figures (of a day or of the period) with net, the ratios and the
    amounts as the reader reads them (for the chart's tooltips)."""
    net = values["paid"] - values["refunded"]
    return {
        **values,
        "net": net,
        "refund_rate": ratio(values["refunded"], values["paid"]),
        "conversion": ratio(values["paid_orders"], values["created"]),
        "paid_text": format_money(values["paid"], currency),
        "refunded_text": format_money(values["refunded"], currency),
        "net_text": format_money(net, currency),
    }


def _currencies(days: dict[datetime.date, dict]) -> list[dict[str, Any]]:
    """Per currency found in the period: its totals, its days (newest first, for the
    table) and its chart's data (oldest first; amounts as decimal strings, plotted only,
    and their tooltips formatted here: the page's script formats no money)."""
    ordered = sorted(days)
    found = sorted({currency for per_day in days.values() for currency in per_day})
    result = []
    for currency in found:
        total = _blank()
        rows = []
        for day in ordered:
            values = days[day].get(currency) or _blank()
            for name in FIGURES:
                total[name] += values[name]
            rows.append({"day": day, **_shown(currency, values)})
        chart = {
            "currency": currency,
            "code": currency.upper(),
            "days": [row["day"].isoformat() for row in rows],
            "labels": [dateformat.format(row["day"], "M j") for row in rows],
            **{key: [str(row[key]) for row in rows] for key in ("paid", "refunded", "net")},
            **{
                f"{key}_text": [row[f"{key}_text"] for row in rows]
                for key in ("paid", "refunded", "net")
            },
        }
        result.append(
            {
                "currency": currency,
                "code": currency.upper(),
                "total": _shown(currency, total),
                "days": rows[::-1],
                "chart": chart,
            }
        )
    return result


def _attention() -> dict[str, Any]:
    """Open "needs attention" rows per kind, flagged orders (a second purchase kept
    under PAY_DUPLICATE_PAYMENT_POLICY=flag: an open ``duplicate_purchase`` row each)
    and refunds awaiting a second staff member, with links to their filtered lists.
    Two queries."""
    counts = {
        row["kind"]: row
        for row in Attention.objects.filter(status=AttentionStatus.OPEN)
        .values("kind")
        .annotate(n=Count("id"), orders=Count("order", distinct=True))
        .order_by()
    }
    attention_url = reverse("admin:orders_attention_changelist")

    def link(**query: str) -> str:
        return f"{attention_url}?{urlencode({'status__exact': AttentionStatus.OPEN, **query})}"

    kinds = [
        {
            "kind": kind,
            "label": label,
            "count": counts.get(kind, {}).get("n", 0),
            "url": link(kind__exact=kind),
        }
        for kind, label in AttentionKind.choices
    ]
    flagged = counts.get(AttentionKind.DUPLICATE_PURCHASE, {}).get("orders", 0)
    approvals = RefundApproval.objects.filter(status=ApprovalStatus.AWAITING).count()
    approvals_url = reverse("admin:orders_refundapproval_changelist")
    return {
        "attention_open": sum(kind["count"] for kind in kinds),
        "attention_url": link(),
        "attention": kinds,
        "flagged": flagged,
        "flagged_url": link(kind__exact=AttentionKind.DUPLICATE_PURCHASE),
        "approvals": approvals,
        "approvals_url": f"{approvals_url}?status__exact={ApprovalStatus.AWAITING}",
    }


def build(params: Mapping[str, str]) -> dict[str, Any]:
    """The dashboard page's context: the period, its figures per currency, and what
    needs staff. Six queries whatever the period and the number of orders: the four
    aggregates of ``_aggregate`` over the days not in the cache (today at least), and
    two of ``_attention``."""
    start, end, chosen = period(params)
    days, undated = figures(start, end)
    currencies = _currencies(days)
    return {
        "start": start,
        "end": end,
        "days": chosen,
        "periods": [{"days": n, "current": n == chosen} for n in PERIODS],
        "undated": undated,
        "currencies": currencies,
        "charts": [entry["chart"] for entry in currencies],
        **_attention(),
    }
