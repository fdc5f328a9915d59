"""CSV export of the order and refund lists: the filters and search on screen, streamed
a chunk at a time, safe to open in a spreadsheet."""

import csv
import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.admin import exports
from orders.models import OrderStatus
from tests.factories import OrderFactory, ProductFactory, RefundFactory, UserFactory
from tests.orders.admin.helpers import ORDERS, REFUNDS

pytestmark = pytest.mark.django_db

ORDER_EXPORT = reverse("admin:orders_order_export")
REFUND_EXPORT = reverse("admin:orders_refund_export")


def read(response) -> list[dict]:
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_order_export_carries_the_filters_and_search_of_the_list(admin_client):
    product = ProductFactory(name="Python")
    paid = OrderFactory(paid=True, product_bid=product.product_bid)
    OrderFactory(product_bid=product.product_bid)  # unpaid: filtered out
    OrderFactory(paid=True)  # another product: searched out

    lines = read(admin_client.get(ORDER_EXPORT, {"status__exact": OrderStatus.PAID, "q": "pyth"}))

    assert [line["order_bid"] for line in lines] == [paid.order_bid]
    line = lines[0]
    assert line["product_title"] == "Python"
    assert (line["status_code"], line["status"]) == ("502", "paid")
    assert (line["currency"], line["paid"], line["amount_due"]) == ("CNY", "19.90", "19.90")
    paid.refresh_from_db()  # as stored: MySQL's legacy column keeps whole seconds
    assert line["created_at"] == paid.created_at.isoformat()


def test_the_list_links_to_the_export_with_its_query_string(admin_client):
    html = admin_client.get(ORDERS, {"status__exact": "502", "q": "abc", "p": "1"}).content
    assert f'href="{ORDER_EXPORT}?' in html.decode()
    assert "status__exact=502" in html.decode() and "q=abc" in html.decode()
    assert f'href="{REFUND_EXPORT}?' in admin_client.get(REFUNDS).content.decode()


def test_export_neutralizes_formulas_and_keeps_amounts_numeric(admin_client):
    product = ProductFactory(name='=HYPERLINK("http://evil","x")')
    order = OrderFactory(paid=True, product_bid=product.product_bid, user_bid="@user")
    RefundFactory(order=order, amount=Decimal("5.00"), reason="-2+3 \tsum")

    line = read(admin_client.get(ORDER_EXPORT))[0]
    assert line["product_title"] == "'" + product.name
    assert line["user_bid"] == "'@user"
    refund = read(admin_client.get(REFUND_EXPORT))[0]
    assert refund["reason"] == "'-2+3 \tsum"
    assert refund["amount"] == "5.00"
    assert exports.cell(Decimal("-5.00")) == Decimal("-5.00")
    for start in (
        "=",
        "+",
        "-",
        "@",
        "\t",
        "\r",
        "\n",
        "\uff1d",
        "\uff0b",
        "\uff0d",
        "\uff20",
        " =",
        "\u3000=",
    ):
        assert exports.cell(f"{start}1") == f"'{start}1"
    assert exports.cell("a=1") == "a=1"


def test_export_reads_a_chunk_at_a_time_and_every_row_once(admin_client, monkeypatch):
    monkeypatch.setattr(exports, "EXPORT_CHUNK", 3)
    orders = OrderFactory.create_batch(8)

    lines = read(admin_client.get(ORDER_EXPORT))

    assert [line["order_bid"] for line in lines] == [o.order_bid for o in reversed(orders)]


def test_export_queries_do_not_grow_with_rows(admin_client):
    """Product titles come from one lookup a chunk, paid_at from the same query."""
    product = ProductFactory()

    def queries():
        with CaptureQueriesContext(connection) as captured:
            read(admin_client.get(ORDER_EXPORT))
        return len(captured)

    OrderFactory.create_batch(3, product_bid=product.product_bid, paid=True)
    few = queries()
    OrderFactory.create_batch(30, paid=True)
    assert queries() == few


def test_refund_export_has_its_order_user_and_product(admin_client):
    product = ProductFactory(name="Go")
    order = OrderFactory(paid=True, product_bid=product.product_bid)
    refund = RefundFactory(order=order, amount=Decimal("3.50"))

    line = read(admin_client.get(REFUND_EXPORT, {"q": order.order_bid}))[0]

    assert (line["refund_bid"], line["order_bid"], line["user_bid"]) == (
        refund.refund_bid,
        order.order_bid,
        order.user_bid,
    )
    assert (line["product_title"], line["currency"], line["amount"]) == ("Go", "CNY", "3.50")


def test_export_needs_the_view_permission(client):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    assert client.get(ORDER_EXPORT).status_code == 403
    user.user_permissions.set(Permission.objects.filter(codename="view_order"))
    assert client.get(ORDER_EXPORT).status_code == 200
    assert client.get(REFUND_EXPORT).status_code == 403
