"""The admin of orders, as support staff use it: the list, its search and count, the
order's page, and money records that cannot be changed."""

import datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.models import Order, OrderStatus, Refund, RefundStatus
from payments.models import AttemptStatus
from payments_project.admin_utils import CappedCountPaginator
from tests.factories import (
    OrderFactory,
    PingxxOrderFactory,
    RefundFactory,
    StaffFactory,
    StripeOrderFactory,
    UserFactory,
)
from tests.orders.admin.helpers import BOUNDED_COUNT, ORDERS, change_url, order_counts, rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(client):
    """A support agent: staff, not superuser, with only the view permissions."""
    user = UserFactory(is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_order", "view_refund", "view_product", "view_pingxxorder"]
        )
    )
    client.force_login(user)
    return client


# ---- the list ----


def test_order_list_shows_money_with_currency_and_status_label_with_code(admin_client):
    OrderFactory(
        paid=True,
        payable_price=Decimal("19.90"),
        refunded_price=Decimal("5.00"),
        status=OrderStatus.REFUNDED,
    )

    response = admin_client.get(ORDERS)

    assert response.status_code == 200
    html = response.content.decode()
    assert "CN¥19.90" in html
    assert "CN¥5.00" in html
    assert "refunded (503)" in html


def test_order_list_orders_newest_first_by_primary_key(admin_client):
    first, second = OrderFactory(), OrderFactory()

    html = admin_client.get(ORDERS).content.decode()

    assert html.index(second.order_bid) < html.index(first.order_bid)


@pytest.mark.parametrize("field", ["order_bid", "user_bid", "product_bid"])
def test_order_search_by_exact_id_finds_the_order(admin_client, field):
    wanted, other = OrderFactory(), OrderFactory()

    response = admin_client.get(ORDERS, {"q": getattr(wanted, field)})

    assert wanted.order_bid in response.content.decode()
    assert other.order_bid not in response.content.decode()


def test_order_search_does_not_match_part_of_an_id(admin_client):
    order = OrderFactory()

    response = admin_client.get(ORDERS, {"q": order.order_bid[4:20]})

    assert order.order_bid not in response.content.decode()


def test_order_search_by_pingxx_charge_id_finds_its_order(admin_client):
    wanted, other = OrderFactory(), OrderFactory()
    PingxxOrderFactory(order_bid=wanted.order_bid, charge_id="ch_wanted0000000000000001")
    PingxxOrderFactory(order_bid=other.order_bid)

    response = admin_client.get(ORDERS, {"q": "ch_wanted0000000000000001"})

    assert wanted.order_bid in response.content.decode()
    assert other.order_bid not in response.content.decode()


def test_order_search_by_stripe_payment_intent_finds_its_order(admin_client):
    wanted, other = OrderFactory(payment_channel="stripe"), OrderFactory(payment_channel="stripe")
    StripeOrderFactory(order_bid=wanted.order_bid, payment_intent_id="pi_wanted")
    StripeOrderFactory(order_bid=other.order_bid)

    response = admin_client.get(ORDERS, {"q": "pi_wanted"})

    assert wanted.order_bid in response.content.decode()
    assert other.order_bid not in response.content.decode()


def test_order_filters_by_status_channel_and_date(admin_client):
    paid = OrderFactory(paid=True, payment_channel="stripe")
    unpaid = OrderFactory(payment_channel="pingxx")
    old = OrderFactory(paid=True, payment_channel="stripe")
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=90))

    by_status = admin_client.get(ORDERS, {"status__exact": OrderStatus.PAID}).content.decode()
    by_channel = admin_client.get(ORDERS, {"payment_channel": "pingxx"}).content.decode()
    # The value the "Past 7 days" link carries: local midnight, with its offset.
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    week_ago = str(midnight - datetime.timedelta(days=7))
    by_date = admin_client.get(ORDERS, {"created_at__gte": week_ago}).content.decode()

    assert paid.order_bid in by_status and unpaid.order_bid not in by_status
    assert unpaid.order_bid in by_channel and paid.order_bid not in by_channel
    assert paid.order_bid in by_date and old.order_bid not in by_date


def test_order_list_query_count_does_not_grow_with_rows(admin_client):
    OrderFactory.create_batch(5, paid=True)
    admin_client.get(ORDERS)  # warm the session and content-type caches

    with CaptureQueriesContext(connection) as few:
        response_few = admin_client.get(ORDERS)
    OrderFactory.create_batch(45, paid=True)
    with CaptureQueriesContext(connection) as many:
        response_many = admin_client.get(ORDERS)

    assert (rows(response_few), rows(response_many)) == (5, 50)
    assert len(many) == len(few)


@pytest.mark.parametrize(
    "params",
    [{}, {"status__exact": OrderStatus.PAID}, {"q": "0123456789abcdef"}, {"p": 2}],
    ids=["plain", "filtered", "searched", "second-page"],
)
def test_order_list_counts_only_over_a_bounded_subquery(admin_client, params):
    OrderFactory.create_batch(60, paid=True)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(ORDERS, params)

    assert response.status_code == 200
    counts = order_counts(queries)
    assert counts, "the paginator counts the orders once"
    for sql in counts:
        assert BOUNDED_COUNT.search(sql), sql


def test_order_list_past_the_count_cap_says_so_and_pages_up_to_it(admin_client, monkeypatch):
    OrderFactory.create_batch(5)
    monkeypatch.setattr(CappedCountPaginator, "count_cap", 3)
    monkeypatch.setattr(admin.site._registry[Order], "list_per_page", 2)

    first = admin_client.get(ORDERS)
    beyond = admin_client.get(ORDERS, {"p": 3})

    assert "3+ orders" in first.content.decode()
    assert rows(first) == 2
    # Page 3 would hold rows past the cap: the admin answers with its error redirect.
    assert beyond.status_code == 302
    assert "e=1" in beyond["Location"]


def test_capped_paginator_counts_up_to_the_cap(monkeypatch):
    OrderFactory.create_batch(5)
    monkeypatch.setattr(CappedCountPaginator, "count_cap", 3)

    capped = CappedCountPaginator(Order.objects.order_by("-id"), 2)
    exact = CappedCountPaginator(Order.objects.filter(pk__lte=0).order_by("-id"), 2)

    assert (capped.count, capped.count_capped, capped.num_pages) == (3, True, 2)
    assert (exact.count, exact.count_capped) == (0, False)


# ---- the order's page ----


def test_order_page_shows_refundable_attempts_and_refunds(admin_client):
    order = OrderFactory(paid=True, payable_price=Decimal("19.90"), refunded_price=Decimal("5"))
    pingxx = PingxxOrderFactory(order_bid=order.order_bid, status=AttemptStatus.PAID)
    stripe = StripeOrderFactory(order_bid=order.order_bid, payment_intent_id="pi_on_the_page")
    refund = RefundFactory(order=order, amount=Decimal("5.00"), status=RefundStatus.SUCCEEDED)
    PingxxOrderFactory(charge_id="ch_of_another_order")

    response = admin_client.get(change_url(order))

    assert response.status_code == 200
    html = response.content.decode()
    assert "CN¥14.90" in html  # refundable: 19.90 paid - 5.00 refunded
    assert pingxx.charge_id in html and "paid (1)" in html
    assert "CN¥19.90" in html
    assert "pi_on_the_page" in html and change_url(stripe) in html
    assert refund.refund_bid in html
    assert "ch_of_another_order" not in html


def test_order_page_query_count_does_not_grow_with_attempts_and_refunds(admin_client):
    order = OrderFactory(paid=True)
    RefundFactory(order=order, requested_by=StaffFactory())
    PingxxOrderFactory(order_bid=order.order_bid)
    StripeOrderFactory(order_bid=order.order_bid)
    admin_client.get(change_url(order))

    with CaptureQueriesContext(connection) as few:
        admin_client.get(change_url(order))
    for _ in range(4):
        RefundFactory(order=order, requested_by=StaffFactory())
        PingxxOrderFactory(order_bid=order.order_bid)
        StripeOrderFactory(order_bid=order.order_bid)
    with CaptureQueriesContext(connection) as many:
        admin_client.get(change_url(order))

    assert len(many) == len(few)


# ---- read-only money records ----


@pytest.mark.parametrize("make", [lambda: OrderFactory(paid=True), RefundFactory])
def test_orders_and_refunds_cannot_be_added_changed_or_deleted(admin_client, make):
    obj = make()
    opts = obj._meta
    url = change_url(obj)
    obj.refresh_from_db()  # as stored: legacy DATETIME columns drop microseconds
    before = {f.attname: getattr(obj, f.attname) for f in opts.concrete_fields}

    posted = admin_client.post(url, {"status": "503", "paid_price": "0", "amount": "1"})
    added = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    deleted = admin_client.post(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk]),
        {"post": "yes"},
    )

    assert (posted.status_code, added.status_code, deleted.status_code) == (403, 403, 403)
    obj.refresh_from_db()
    assert {f.attname: getattr(obj, f.attname) for f in opts.concrete_fields} == before
    assert 'name="_save"' not in admin_client.get(url).content.decode()


def test_staff_with_view_permission_browse_orders(viewer_client):
    order = OrderFactory(paid=True)
    RefundFactory(order=order)

    listing = viewer_client.get(ORDERS)
    page = viewer_client.get(change_url(order))

    assert listing.status_code == 200 and order.order_bid in listing.content.decode()
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


def test_staff_without_view_permission_are_refused(client):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(ORDERS).status_code == 403


def test_refund_is_not_created_through_the_order_page(admin_client):
    order = OrderFactory(paid=True)

    admin_client.post(
        change_url(order),
        {
            "refunds-TOTAL_FORMS": "1",
            "refunds-INITIAL_FORMS": "0",
            "refunds-0-amount": "1.00",
            "refunds-0-reason": "x",
        },
    )

    assert not Refund.objects.exists()
