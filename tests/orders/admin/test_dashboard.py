"""The staff dashboard: money per currency and day (paid on the day of payment, refunds
on the day they succeeded), conversion, the period, charts and what needs staff.

The tests without a marker run on SQLite and on MariaDB (the suite's second pass).
"""

import datetime
import json
import re
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone

from orders import dashboard, services
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
from orders.services.lifecycle import TRANSITIONS, order_set_status
from payments.tasks import webhook_deliver
from tests.factories import OrderFactory, StaffFactory, UserFactory
from tests.orders.services.helpers import refund_event
from tests.sandbox import paid_through_sandbox

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox_channel")]

DASHBOARD = reverse("admin:orders_order_dashboard")
CHART_JS = "orders/vendor/chartjs/chart.umd.min.js"


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def viewer(client):
    user = UserFactory(username="viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_order"))
    client.force_login(user)
    return client


def noon(days_ago: int) -> datetime.datetime:
    """Noon, in the current time zone, ``days_ago`` days before today."""
    day = timezone.localdate() - datetime.timedelta(days=days_ago)
    return datetime.datetime.combine(day, datetime.time(12), tzinfo=timezone.get_current_timezone())


def day(days_ago: int) -> datetime.date:
    return timezone.localdate() - datetime.timedelta(days=days_ago)


def created(*, days_ago: int = 0, price: str = "19.90", currency: str = "cny", **fields) -> Order:
    fields.setdefault("status", OrderStatus.UNPAID)
    order = OrderFactory(payable_price=Decimal(price), currency=currency, **fields)
    Order.objects.filter(pk=order.pk).update(created_at=noon(days_ago))
    order.refresh_from_db()
    return order


def paid(*, created_ago: int = 0, paid_ago: int | None = None, **fields) -> Order:
    """An order created ``created_ago`` days ago and paid here ``paid_ago`` days ago
    (the history line of its payment dated so)."""
    order = created(days_ago=created_ago, **fields)
    order_set_status(
        order=order, to=OrderStatus.PAID, source="test", changes={"paid_price": order.payable_price}
    )
    OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).update(
        created_at=noon(created_ago if paid_ago is None else paid_ago)
    )
    return order


def refunded(order: Order, amount: str, *, days_ago: int = 0, **fields) -> Refund:
    fields.setdefault("status", RefundStatus.SUCCEEDED)
    return Refund.objects.create(
        order=order,
        payment_channel=order.payment_channel,
        amount=Decimal(amount),
        currency=order.currency,
        reason="asked",
        settled_at=noon(days_ago) if fields["status"] != RefundStatus.PENDING else None,
        **fields,
    )


def currencies(response) -> dict[str, dict]:
    return {entry["currency"]: entry for entry in response.context["currencies"]}


def per_day(response, currency: str) -> dict[datetime.date, dict]:
    return {row["day"]: row for row in currencies(response)[currency]["days"]}


def cells(html: str, currency: str, day_: datetime.date | None = None) -> str:
    """The HTML of the totals row of ``currency``, or of its row of ``day_``."""
    where = f'data-currency="{currency}"' + (f' data-day="{day_.isoformat()}"' if day_ else "")
    match = re.search(rf"<tr {where}>(.*?)</tr>", html, re.DOTALL)
    assert match, f"no row {where}"
    return match.group(1)


# ---- what is counted, and on which day ----


def test_an_order_counts_on_the_day_it_was_paid_not_the_day_it_was_created(viewer):
    paid(created_ago=3, paid_ago=2, price="10.00")
    response = viewer.get(DASHBOARD)
    days = per_day(response, "cny")
    assert days[day(3)]["created"] == 1 and days[day(3)]["paid_orders"] == 0
    assert days[day(3)]["paid"] == Decimal("0.00")
    assert days[day(2)]["created"] == 0 and days[day(2)]["paid_orders"] == 1
    assert days[day(2)]["paid"] == Decimal("10.00")
    assert "CN¥10.00" in cells(response.content.decode(), "cny", day(2))


def test_refunds_count_on_the_day_they_succeeded(viewer):
    order = paid(created_ago=10, price="50.00")
    refunded(order, "5.00", days_ago=4)
    refunded(order, "7.00", days_ago=1)
    refunded(order, "1.00", status=RefundStatus.PENDING)
    refunded(order, "2.00", status=RefundStatus.FAILED, days_ago=1)
    # A second payment given back: neither it nor its refund is in the order's totals.
    refunded(order, "50.00", days_ago=1, duplicate_payment=True)
    response = viewer.get(DASHBOARD)
    days = per_day(response, "cny")
    assert (days[day(4)]["refunded"], days[day(4)]["refunds"]) == (Decimal("5.00"), 1)
    assert (days[day(1)]["refunded"], days[day(1)]["refunds"]) == (Decimal("7.00"), 1)
    assert days[day(1)]["net"] == Decimal("-7.00")
    total = currencies(response)["cny"]["total"]
    assert total["refunded"] == Decimal("12.00") and total["net"] == Decimal("38.00")


def test_a_refund_made_through_the_console_shows_today(viewer):
    order = paid_through_sandbox(price="10.00", user_bid="b")
    services.refund_request(order=order, amount=Decimal("3.00"), reason="x")
    html = viewer.get(DASHBOARD).content.decode()
    today = cells(html, "cny", day(0))
    assert re.search(r'class="amount refunded">CN¥3.00<', today)
    assert re.search(r'class="amount net">CN¥7.00<', today)
    assert re.search(r'class="amount refunded">CN¥3.00<', cells(html, "cny"))


def test_net_refund_rate_and_conversion_over_the_period(viewer):
    first = paid(created_ago=5, price="100.00")
    paid(created_ago=5, paid_ago=4, price="60.00")
    paid(created_ago=2, price="40.00")
    created(days_ago=5)
    created(days_ago=2)
    created(days_ago=2, status=OrderStatus.CANCELLED)
    refunded(first, "50.00", days_ago=1)
    response = viewer.get(DASHBOARD)
    total = currencies(response)["cny"]["total"]
    assert total["paid"] == Decimal("200.00") and total["paid_orders"] == 3
    assert total["refunded"] == Decimal("50.00") and total["net"] == Decimal("150.00")
    assert total["refund_rate"] == "25.0%"
    assert total["created"] == 6 and total["conversion"] == "50.0%"
    assert per_day(response, "cny")[day(5)]["conversion"] == "33.3%"  # 1 paid of 3 created
    row = cells(response.content.decode(), "cny")
    assert 'class="amount net">CN¥150.00<' in row and ">25.0%<" in row and ">50.0%<" in row


def test_the_page_never_adds_two_currencies(viewer):
    paid(price="4800.00", currency="jpy")
    paid(price="29.90", currency="cny")
    paid(price="6.99", currency="usd", payment_channel="stripe")
    response = viewer.get(DASHBOARD)
    found = currencies(response)
    assert sorted(found) == ["cny", "jpy", "usd"]
    assert found["jpy"]["total"]["paid"] == Decimal("4800.00")
    assert found["usd"]["total"]["paid"] == Decimal("6.99")
    html = response.content.decode()
    assert 'class="amount paid">¥4,800<' in cells(html, "jpy")
    assert 'class="amount paid">$6.99<' in cells(html, "usd")
    assert 'class="amount paid">CN¥29.90<' in cells(html, "cny")


def test_sums_are_exact_decimals_on_every_database(viewer):
    for price in ("9.90", "9.90", "10.10"):
        order = paid(created_ago=1, price=price)
        refunded(order, "0.10", days_ago=1)
    response = viewer.get(DASHBOARD)
    total = currencies(response)["cny"]["total"]
    assert total["paid"] == Decimal("29.90") and str(total["paid"]) == "29.90"
    assert str(total["refunded"]) == "0.30" and str(total["net"]) == "29.60"
    assert str(per_day(response, "cny")[day(1)]["paid"]) == "29.90"
    html = response.content.decode()
    assert 'class="amount paid">CN¥29.90<' in cells(html, "cny")
    assert "29.9000" not in html and "0.3000" not in html


def test_orders_paid_by_another_system_count_on_the_day_they_were_created(viewer):
    """The old system's paid orders have no payment in this service's history; a
    refund that failed after succeeding (refunded -> paid again) is no new payment."""
    OrderFactory(paid=True, payable_price=Decimal("8.00"))  # today, for the cache below
    legacy = created(days_ago=6, price="30.00")
    Order.objects.filter(pk=legacy.pk).update(
        status=OrderStatus.REFUNDED, paid_price=Decimal("30.00"), refunded_price=Decimal("30.00")
    )
    legacy.refresh_from_db()
    order_set_status(order=legacy, to=OrderStatus.PAID, source="test", refund_reversal=True)
    reversed_here = paid(created_ago=6, paid_ago=5, price="20.00")
    order_set_status(order=reversed_here, to=OrderStatus.REFUNDED, source="test")
    order_set_status(order=reversed_here, to=OrderStatus.PAID, source="test", refund_reversal=True)
    response = viewer.get(DASHBOARD)
    days = per_day(response, "cny")
    assert (days[day(6)]["paid"], days[day(6)]["paid_unrecorded"]) == (Decimal("30.00"), 1)
    assert (days[day(5)]["paid"], days[day(5)]["paid_orders"]) == (Decimal("20.00"), 1)
    total = currencies(response)["cny"]["total"]
    assert total["paid"] == Decimal("58.00") and total["paid_orders"] == 3
    assert "2 of the paid orders were paid by another system" in response.content.decode()


def test_grants_are_no_sales(viewer):
    paid(price="0.00", payment_channel="grant")
    response = viewer.get(DASHBOARD)
    assert currencies(response) == {}
    assert "No orders, payments or refunds in this period." in response.content.decode()


def test_an_empty_period_shows_an_empty_page(viewer):
    response = viewer.get(DASHBOARD)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="dashboard-totals"' in html and "No orders, payments or refunds" in html
    data = re.search(
        r'<script id="dashboard-chart-data" type="application/json">(.*?)</script>', html
    )
    assert json.loads(data.group(1)) == []


# ---- the period ----


@pytest.mark.parametrize(
    ("query", "days"),
    [
        ("", 30),
        ("?days=7", 7),
        ("?days=30", 30),
        ("?days=90", 90),
        ("?days=12", 30),
        ("?days=x", 30),
    ],
)
def test_the_period_is_the_last_7_30_or_90_days(viewer, query, days):
    paid(created_ago=days - 1, price="1.00")
    paid(created_ago=days, price="2.00")  # the day before the period
    response = viewer.get(DASHBOARD + query)
    assert response.context["start"] == day(days - 1) and response.context["end"] == day(0)
    assert currencies(response)["cny"]["total"]["paid"] == Decimal("1.00")
    assert len(currencies(response)["cny"]["days"]) == days
    html = response.content.decode()
    assert f'<a href="?days={days}" aria-current="page">' in html
    for other in {7, 30, 90} - {days}:
        assert f'<a href="?days={other}">' in html


def test_a_range_of_dates_is_still_accepted(viewer):
    paid(created_ago=40, price="3.00")
    response = viewer.get(DASHBOARD, {"start": day(45).isoformat(), "end": day(35).isoformat()})
    assert (response.context["start"], response.context["end"]) == (day(45), day(35))
    assert response.context["days"] is None
    assert currencies(response)["cny"]["total"]["paid"] == Decimal("3.00")


# ---- cost ----


@pytest.mark.parametrize("days", [7, 90])
def test_a_constant_number_of_queries(django_assert_num_queries, days):
    """Four aggregates (payments, orders created, orders paid elsewhere, refunds) and
    two counts (needs attention, approvals), whatever the days and the orders."""
    for n in range(days):
        order = paid(created_ago=n, price="1.00", currency=("cny", "usd")[n % 2])
        refunded(order, "0.50", days_ago=n)
        created(days_ago=n)
    with django_assert_num_queries(6):
        report = dashboard.build({"days": str(days)})
    assert sum(len(entry["days"]) for entry in report["currencies"]) == 2 * days
    with django_assert_num_queries(6):  # closed days from the cache, today again
        dashboard.build({"days": str(days)})


def test_the_page_costs_the_same_on_more_orders(viewer, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    paid(price="1.00")
    with CaptureQueriesContext(connection) as few:
        viewer.get(DASHBOARD + "?days=90")
    cache.clear()
    for n in range(30):
        paid(created_ago=n, price="1.00")
    with CaptureQueriesContext(connection) as many:
        viewer.get(DASHBOARD + "?days=90")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_payments_are_those_lifecycle_allows_to_be_paid_from():
    allowed = {status for status, to in TRANSITIONS.items() if OrderStatus.PAID in to}
    assert set(dashboard.PAID_FROM) == allowed


# ---- what needs staff ----


def test_needs_attention_and_flagged_orders_are_counted_with_links(viewer):
    flagged = [paid(), paid()]
    for order in flagged:
        Attention.objects.create(
            kind=AttentionKind.DUPLICATE_PURCHASE,
            subject_kind="order",
            subject_bid=order.order_bid,
            order=order,
            reason="paid twice",
        )
    Attention.objects.create(
        kind=AttentionKind.REFUND_FAILED, subject_kind="refund", subject_bid="r1", reason="x"
    )
    Attention.objects.create(
        kind=AttentionKind.REFUND_FAILED,
        subject_kind="refund",
        subject_bid="r2",
        reason="x",
        status=AttentionStatus.RESOLVED,
    )
    Attention.objects.create(
        kind=AttentionKind.UNSETTLED,
        subject_kind="refund",
        subject_bid="r3",
        reason="x",
        status=AttentionStatus.WATCHING,
    )
    RefundApproval.objects.create(
        order=flagged[0],
        amount=Decimal("1.00"),
        currency="cny",
        reason="r",
        requested_by=StaffFactory(),
        status=ApprovalStatus.AWAITING,
    )
    response = viewer.get(DASHBOARD)
    context = response.context
    counts = {row["kind"]: row["count"] for row in context["attention"]}
    assert counts[AttentionKind.DUPLICATE_PURCHASE] == 2
    assert counts[AttentionKind.REFUND_FAILED] == 1 and counts[AttentionKind.UNSETTLED] == 0
    assert context["attention_open"] == 3 and context["flagged"] == 2
    assert context["approvals"] == 1
    html = response.content.decode()
    attention = "/admin/orders/attention/?status__exact=open"
    assert f'<a href="{attention}&amp;kind__exact=duplicate_purchase" class="count">2</a>' in html
    assert f'<a href="{attention}&amp;kind__exact=refund_failed">refund failed</a>' in html
    assert f'<a href="{attention}" class="attention-open">3</a>' in html
    approvals = "/admin/orders/refundapproval/?status__exact=awaiting"
    assert f'<a href="{approvals}" id="dashboard-approvals" class="count">1</a>' in html
    # The links list what they count.
    listing = viewer.get(f"{attention}&kind__exact=duplicate_purchase")
    assert listing.status_code in (200, 403)


# ---- the page ----


def test_the_charts_use_the_vendored_chart_js_and_no_other_site(viewer):
    paid(created_ago=1, price="12.30")
    order = paid(price="5.00")
    refunded(order, "2.00")
    response = viewer.get(DASHBOARD)
    html = response.content.decode()
    assert f'<script src="{static(CHART_JS)}" defer></script>' in html
    assert finders.find(CHART_JS) and finders.find("orders/vendor/chartjs/LICENSE.md")
    sources = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html)
    assert sources and not [src for src in sources if re.match(r"(https?:)?//", src)]
    assert 'id="dashboard-chart-cny"' in html
    data = re.search(
        r'<script id="dashboard-chart-data" type="application/json">(.*?)</script>', html
    )
    (chart,) = json.loads(data.group(1))
    assert chart["currency"] == "cny" and len(chart["days"]) == 30
    assert chart["days"][-1] == day(0).isoformat() and chart["labels"][-1]
    assert (chart["paid"][-2], chart["paid_text"][-2]) == ("12.30", "CN¥12.30")
    assert (chart["refunded"][-1], chart["refunded_text"][-1]) == ("2.00", "CN¥2.00")
    assert (chart["net"][-1], chart["net_text"][-1]) == ("3.00", "CN¥3.00")


def test_the_vendored_script_is_served(viewer):
    response = viewer.get(static(CHART_JS))
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body.startswith(b"/*!\n * Chart.js v4.")


def test_the_dashboard_is_linked_from_the_order_list(viewer):
    assert DASHBOARD in viewer.get(reverse("admin:orders_order_changelist")).content.decode()


# ---- the cache of closed days ----


def test_closed_days_come_from_the_cache_and_our_changes_forget_them(
    viewer, django_capture_on_commit_callbacks
):
    """Figures of days before today are aggregated once, then read from the cache:
    later views aggregate only today. A refund that fails after it succeeded is taken
    off the day it succeeded on at once; a row another system writes shows once the
    day's cached figures expire."""
    order = paid_through_sandbox(price="19.90")
    refund = services.refund_request(order=order, reason="all of it")
    Refund.objects.filter(pk=refund.pk).update(settled_at=noon(3))
    refund.refresh_from_db()

    def total(name):
        return currencies(viewer.get(DASHBOARD))["cny"]["total"][name]

    assert total("refunded") == Decimal("19.90")
    with mock.patch.object(dashboard, "_aggregate", wraps=dashboard._aggregate) as aggregated:
        viewer.get(DASHBOARD)
    aggregated.assert_called_once_with(day(0), day(0))
    assert per_day(viewer.get(DASHBOARD), "cny")[day(3)]["refunded"] == Decimal("19.90")

    body, headers = refund_event("evt_refund_failed", refund, "failed")
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_deliver(channel="sandbox", body=body, headers=headers).http_status == 200
    assert total("refunded") == Decimal("0.00")
    assert total("paid") == Decimal("19.90")  # back to paid: no second payment

    other = OrderFactory(paid=True, payable_price=Decimal("5.00"))
    Order.objects.filter(pk=other.pk).update(created_at=noon(7))  # another system's write
    assert total("paid") == Decimal("19.90")
    cache.clear()  # the day's figures expired
    assert total("paid") == Decimal("24.90")


def test_rows_the_database_cannot_place_on_a_day_are_announced_not_dropped(viewer):
    """MySQL without its time-zone tables gives NULL days: the page says how many rows
    it could not count, and keeps nothing in the cache."""

    def undated(start, end):
        return {start + datetime.timedelta(days=n): {} for n in range((end - start).days + 1)}, 3

    with mock.patch.object(dashboard, "_aggregate", side_effect=undated):
        response = viewer.get(DASHBOARD)
    assert response.status_code == 200
    assert "3 orders and refunds of this range are" in response.content.decode()
    assert cache.get(dashboard._day_key(day(5))) is None
