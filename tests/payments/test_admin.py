"""The admin of Ping++ and Stripe attempts and of the webhook inbox."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from payments.models import AttemptStatus, InboxStatus, PingxxOrder, StripeOrder, WebhookEvent
from payments_project.admin_utils import pretty_json, pretty_legacy_object
from tests.factories import (
    OrderFactory,
    PingxxOrderFactory,
    StripeOrderFactory,
    WebhookEventFactory,
)

pytestmark = pytest.mark.django_db

PINGXX = reverse("admin:payments_pingxxorder_changelist")
STRIPE = reverse("admin:payments_stripeorder_changelist")
INBOX = reverse("admin:payments_webhookevent_changelist")
ORDERS = reverse("admin:orders_order_changelist")

BOUNDED_COUNT = re.compile(r"COUNT\(\*\).*FROM \(SELECT .* LIMIT \d+\) subquery", re.I | re.S)

LISTS = [
    pytest.param(PINGXX, PingxxOrderFactory, "status_label", id="pingxx"),
    pytest.param(STRIPE, StripeOrderFactory, "status_label", id="stripe"),
    pytest.param(INBOX, WebhookEventFactory, "event_type", id="inbox"),
]


def change_url(obj):
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def html_of(client, url, params=None):
    response = client.get(url, params or {})
    assert response.status_code == 200
    return response.content.decode()


# ---- Lists ----


@pytest.mark.parametrize(("url", "factory", "column"), LISTS)
def test_list_query_count_does_not_grow_and_counts_are_bounded(admin_client, url, factory, column):
    factory.create_batch(3, order_bid=OrderFactory().order_bid)
    admin_client.get(url)

    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    factory.create_batch(30)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(url)

    assert response.content.decode().count(f'class="field-{column}"') == 33
    assert len(many) == len(few)
    counts = [q["sql"] for q in many if "COUNT(" in q["sql"].upper()]
    assert counts
    for sql in counts:
        assert BOUNDED_COUNT.search(sql), sql


@pytest.mark.parametrize(
    "field", ["order_bid", "user_bid", "charge_id", "transaction_no", "pingxx_order_bid"]
)
def test_pingxx_search_by_id_finds_the_attempt(admin_client, field):
    wanted, other = PingxxOrderFactory(), PingxxOrderFactory()

    html = html_of(admin_client, PINGXX, {"q": getattr(wanted, field)})

    assert wanted.pingxx_order_bid in html
    assert other.pingxx_order_bid not in html


def test_pingxx_search_does_not_match_part_of_a_charge_id(admin_client):
    attempt = PingxxOrderFactory(charge_id="ch_abcdefghijklmnopqrstuvwx")

    html = html_of(admin_client, PINGXX, {"q": "abcdefghijkl"})

    assert attempt.pingxx_order_bid not in html


def test_pingxx_filters_by_status_channel_and_date(admin_client):
    paid = PingxxOrderFactory(status=AttemptStatus.PAID, channel="wx_pub_qr")
    pending = PingxxOrderFactory(channel="alipay_qr")
    old = PingxxOrderFactory(status=AttemptStatus.PAID, channel="wx_pub_qr")
    PingxxOrder.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=90)
    )
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)

    by_status = html_of(admin_client, PINGXX, {"status__exact": AttemptStatus.PAID})
    by_channel = html_of(admin_client, PINGXX, {"channel": "alipay_qr"})
    by_date = html_of(
        admin_client, PINGXX, {"created_at__gte": str(midnight - datetime.timedelta(days=7))}
    )

    assert paid.pingxx_order_bid in by_status and pending.pingxx_order_bid not in by_status
    assert pending.pingxx_order_bid in by_channel and paid.pingxx_order_bid not in by_channel
    assert paid.pingxx_order_bid in by_date and old.pingxx_order_bid not in by_date


def test_pingxx_list_shows_amount_status_and_links_to_the_order_without_a_query(admin_client):
    order = OrderFactory()
    PingxxOrderFactory(order_bid=order.order_bid, amount=1990, status=AttemptStatus.REFUNDED)

    html = html_of(admin_client, PINGXX)
    orders = html_of(admin_client, ORDERS, {"order_bid": order.order_bid})

    assert "CN¥19.90" in html
    assert "refunded (2)" in html
    assert f"{ORDERS}?order_bid={order.order_bid}" in html
    assert order.order_bid in orders


@pytest.mark.parametrize(
    "field",
    ["order_bid", "user_bid", "payment_intent_id", "checkout_session_id", "latest_charge_id"],
)
def test_stripe_search_by_id_finds_the_attempt(admin_client, field):
    wanted = StripeOrderFactory(checkout_session_id="cs_wanted", latest_charge_id="ch_wanted")
    other = StripeOrderFactory(checkout_session_id="cs_other", latest_charge_id="ch_other")

    html = html_of(admin_client, STRIPE, {"q": getattr(wanted, field)})

    assert wanted.stripe_order_bid in html
    assert other.stripe_order_bid not in html


def test_stripe_filters_by_status(admin_client):
    failed = StripeOrderFactory(status=AttemptStatus.FAILED)
    pending = StripeOrderFactory()

    html = html_of(admin_client, STRIPE, {"status__exact": AttemptStatus.FAILED})

    assert failed.stripe_order_bid in html and pending.stripe_order_bid not in html
    assert "failed (4)" in html


def test_inbox_search_and_filters(admin_client):
    order = OrderFactory()
    wanted = WebhookEventFactory(
        order_bid=order.order_bid, object_id="ch_object", status=InboxStatus.FAILED
    )
    other = WebhookEventFactory(channel="stripe", status=InboxStatus.APPLIED)

    searches = [
        html_of(admin_client, INBOX, {"q": value})
        for value in (wanted.event_id, order.order_bid, "ch_object")
    ]
    by_status = html_of(admin_client, INBOX, {"status__exact": "failed"})
    by_channel = html_of(admin_client, INBOX, {"channel": "pingxx"})

    for html in [*searches, by_status, by_channel]:
        assert wanted.event_id in html and other.event_id not in html
    assert f"{ORDERS}?order_bid={order.order_bid}" in searches[0]


# ---- Change pages and payloads ----


def test_pingxx_page_pretty_prints_a_json_charge_escaped_and_links_the_order(admin_client):
    order = OrderFactory()
    attempt = PingxxOrderFactory(
        order_bid=order.order_bid,
        charge_object='{"subject": "课程 <script>alert(1)</script>", "amount": 1990, "id": "ch_1"}',
    )

    html = html_of(admin_client, change_url(attempt))

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    # Sorted keys, indent 2, non-ASCII kept.
    assert "{\n  &quot;amount&quot;: 1990,\n  &quot;id&quot;: &quot;ch_1&quot;," in html
    assert "课程" in html
    assert_links_to_the_order_page(admin_client, html, order)


def test_pingxx_page_parses_a_legacy_repr_charge(admin_client):
    attempt = PingxxOrderFactory(
        charge_object="{'id': 'ch_legacy', 'paid': True, 'refunds': {'data': []}}"
    )

    html = html_of(admin_client, change_url(attempt))

    assert "&quot;paid&quot;: true" in html
    assert "&#x27;paid&#x27;: True" not in html


def test_pingxx_page_shows_an_unparseable_charge_as_raw_text(admin_client):
    attempt = PingxxOrderFactory(charge_object="<Charge ch_broken at 0x7f>")

    html = html_of(admin_client, change_url(attempt))

    assert "&lt;Charge ch_broken at 0x7f&gt;" in html


def assert_links_to_the_order_page(admin_client, html, order):
    """The attempt's page links to its order's page, through the order admin's page by
    business id (payments/ never reads the orders table)."""
    url = f"/admin/orders/order/by-bid/{order.order_bid}/"
    assert f'href="{url}"' in html
    followed = admin_client.get(url)
    assert followed.status_code == 302 and followed["Location"] == change_url(order)


def test_pingxx_page_of_an_attempt_without_order_says_so(admin_client):
    attempt = PingxxOrderFactory()

    html = html_of(admin_client, change_url(attempt))

    # payments/ never reads the orders table: the link goes through the order admin's
    # by-id page, which says there is no such order.
    url = f"/admin/orders/order/by-bid/{attempt.order_bid}/"
    assert f'href="{url}"' in html
    missing = admin_client.get(url)
    assert missing.status_code == 404
    assert f"No order {attempt.order_bid}" in missing.content.decode()


def test_stripe_page_pretty_prints_the_payment_intent_escaped(admin_client):
    order = OrderFactory(payment_channel="stripe")
    attempt = StripeOrderFactory(
        order_bid=order.order_bid,
        payment_intent_object={"id": "pi_1", "description": "</pre><script>x()</script>"},
    )

    html = html_of(admin_client, change_url(attempt))

    assert "&lt;/pre&gt;&lt;script&gt;x()&lt;/script&gt;" in html
    assert "<script>x()" not in html
    assert "$19.90" in html
    assert_links_to_the_order_page(admin_client, html, order)


def test_inbox_page_shows_body_and_payload_escaped(admin_client):
    event = WebhookEventFactory(
        body='{"type": "<img src=x onerror=alert(1)>"}',
        payload={"type": "<img src=x onerror=alert(1)>"},
        headers={"X-Pingplusplus-Signature": "sig"},
        last_error="KeyError: '<b>'",
    )

    html = html_of(admin_client, change_url(event))

    assert "<img src=x" not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") == 2
    assert "X-Pingplusplus-Signature" in html
    assert "KeyError: &#x27;&lt;b&gt;&#x27;" in html


# ---- Read-only ----


@pytest.mark.parametrize("factory", [PingxxOrderFactory, StripeOrderFactory, WebhookEventFactory])
def test_attempts_and_inbox_events_cannot_be_added_changed_or_deleted(admin_client, factory):
    obj = factory()
    opts = obj._meta
    obj.refresh_from_db()  # as stored: legacy DATETIME columns drop microseconds
    before = {f.attname: getattr(obj, f.attname) for f in opts.concrete_fields}

    posted = admin_client.post(change_url(obj), {"status": "1", "amount": "1", "attempts": "9"})
    added = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    deleted = admin_client.post(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk]),
        {"post": "yes"},
    )

    assert (posted.status_code, added.status_code, deleted.status_code) == (403, 403, 403)
    obj.refresh_from_db()
    assert {f.attname: getattr(obj, f.attname) for f in opts.concrete_fields} == before
    assert 'name="_save"' not in admin_client.get(change_url(obj)).content.decode()
    assert type(obj).objects.filter(pk=obj.pk).exists()


# ---- Pretty printing ----


def test_pretty_json_sorts_indents_keeps_unicode_and_escapes():
    html = str(pretty_json({"b": "<i>", "a": "元"}))

    assert html.endswith(
        ">{\n  &quot;a&quot;: &quot;元&quot;,\n  &quot;b&quot;: &quot;&lt;i&gt;&quot;\n}</pre>"
    )


def test_pretty_legacy_object_falls_back_for_keys_json_cannot_hold():
    html = str(pretty_legacy_object("{(1, 2): '<x>'}"))

    assert "(1, 2)" in html and "&lt;x&gt;" in html


def test_models_are_all_registered():
    from django.contrib import admin

    assert {PingxxOrder, StripeOrder, WebhookEvent} <= set(admin.site._registry)
