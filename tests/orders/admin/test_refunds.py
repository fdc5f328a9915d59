"""The admin of refunds, as support staff use it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import RefundStatus
from tests.factories import RefundFactory, StaffFactory
from tests.orders.admin.helpers import BOUNDED_COUNT, REFUNDS, change_url, order_counts, rows

pytestmark = pytest.mark.django_db


def test_refund_list_links_to_its_order_and_finds_by_order_and_user(admin_client):
    refund = RefundFactory(status=RefundStatus.FAILED, provider_refund_id="re_wanted")
    other = RefundFactory(status=RefundStatus.SUCCEEDED)

    listing = admin_client.get(REFUNDS).content.decode()
    by_order = admin_client.get(REFUNDS, {"q": refund.order.order_bid}).content.decode()
    by_user = admin_client.get(REFUNDS, {"q": refund.order.user_bid}).content.decode()
    by_provider = admin_client.get(REFUNDS, {"q": "re_wanted"}).content.decode()
    by_status = admin_client.get(REFUNDS, {"status__exact": "failed"}).content.decode()

    assert change_url(refund.order) in listing
    assert "CN¥5.00" in listing
    for html in (by_order, by_user, by_provider, by_status):
        assert refund.refund_bid in html and other.refund_bid not in html


def test_refund_list_query_count_does_not_grow_with_rows(admin_client):
    RefundFactory.create_batch(3, requested_by=StaffFactory())
    admin_client.get(REFUNDS)

    with CaptureQueriesContext(connection) as few:
        admin_client.get(REFUNDS)
    RefundFactory.create_batch(20, requested_by=StaffFactory())
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(REFUNDS)

    assert rows(response, "amount_display") == 23
    assert len(many) == len(few)
    for sql in order_counts(many):
        assert BOUNDED_COUNT.search(sql), sql


def test_refund_page_pretty_prints_the_raw_object_escaped(admin_client):
    refund = RefundFactory(raw={"id": "re_1", "metadata": {"note": "<script>x()</script>"}})

    response = admin_client.get(change_url(refund))

    html = response.content.decode()
    assert response.status_code == 200
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "<script>x()" not in html
    assert change_url(refund.order) in html
