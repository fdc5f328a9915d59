"""The support console's search: orders and refunds found by e-mail, product name and
amount besides their ids, each through an index or a small bounded lookup."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bridge import identity
from orders.models import OrderStatus
from orders.selectors import parse_amount
from tests.factories import OrderFactory, ProductFactory, RefundFactory, UserFactory
from tests.orders.admin.helpers import ORDERS, REFUNDS, rows

pytestmark = pytest.mark.django_db


def found(client, url, term, column="status_label"):
    response = client.get(url, {"q": term})
    assert response.status_code == 200
    return response, rows(response, column)


def test_search_by_the_email_of_a_platform_user_finds_their_orders(admin_client):
    user = identity.platform_user("platformuser1")
    user.email = "Ann.Lee@Example.com"
    user.save()
    mine = OrderFactory(user_bid="platformuser1")
    OrderFactory()

    response, count = found(admin_client, ORDERS, "ann.lee@example.com")

    assert count == 1
    assert mine.order_bid in response.content.decode()


def test_search_by_the_email_of_a_local_account_finds_its_orders(admin_client):
    user = UserFactory(email="buyer@example.com")
    mine = OrderFactory(user_bid=str(user.pk))
    OrderFactory()

    response, count = found(admin_client, ORDERS, "BUYER@example.com")

    assert count == 1
    assert mine.order_bid in response.content.decode()


def test_search_by_username_finds_the_accounts_orders(admin_client):
    user = UserFactory(username="wangfang", email="")
    mine = OrderFactory(user_bid=str(user.pk))
    OrderFactory()

    response, count = found(admin_client, ORDERS, "wangfang")

    assert count == 1
    assert mine.order_bid in response.content.decode()
    # The list says whose it is: the account's e-mail, or else its username.
    assert "wangfang" in rows_text(response)


def rows_text(response) -> str:
    return response.content.decode().split('id="result_list"')[1].split("</table>")[0]


def test_search_by_part_of_a_product_name_any_case(admin_client):
    python = ProductFactory(name="Python 入门 for beginners")
    OrderFactory.create_batch(2, product_bid=python.product_bid)
    OrderFactory(product_bid=ProductFactory(name="Go").product_bid)

    assert found(admin_client, ORDERS, "python 入门")[1] == 2
    assert found(admin_client, ORDERS, "BEGINNERS")[1] == 2


@pytest.mark.parametrize(
    ("term", "expected"),
    [("19.90", 2), ("CN¥19.90", 2), ("¥19.9", 2), ("19.90 CNY", 1), ("usd 19.90", 1)],
)
def test_search_by_amount_paid_with_or_without_currency(admin_client, term, expected):
    OrderFactory(paid=True, payable_price=Decimal("19.90"))
    OrderFactory(paid=True, payable_price=Decimal("19.90"), currency="usd")
    OrderFactory(paid=True, payable_price=Decimal("29.90"))
    OrderFactory(payable_price=Decimal("19.90"))  # unpaid: paid nothing

    assert found(admin_client, ORDERS, term)[1] == expected


def test_search_by_zero_is_not_every_unpaid_order(admin_client):
    OrderFactory.create_batch(3)
    assert found(admin_client, ORDERS, "0")[1] == 0


def test_search_ids_still_match_exactly(admin_client):
    order = OrderFactory(status=OrderStatus.PAID)
    OrderFactory()
    for term in (order.order_bid, order.user_bid, order.product_bid):
        assert found(admin_client, ORDERS, term)[1] == 1
    assert found(admin_client, ORDERS, order.order_bid[:8])[1] == 0


def test_search_help_text_says_what_it_takes(admin_client):
    html = admin_client.get(ORDERS).content.decode()
    assert "e-mail address" in html and "product" in html and "CN¥19.90" in html


def test_search_costs_a_fixed_number_of_queries(admin_client):
    """Every kind of term is resolved by bounded lookups before one query of orders."""
    ProductFactory(name="Data course")

    def queries(term):
        with CaptureQueriesContext(connection) as captured:
            found(admin_client, ORDERS, term)
        return len(captured)

    few = queries("data@example.com")
    OrderFactory.create_batch(5, user_bid="someone")
    assert queries("data@example.com") == few


def test_refund_search_by_email_order_and_amount(admin_client):
    user = UserFactory(email="payer@example.com")
    order = OrderFactory(paid=True, user_bid=str(user.pk))
    refund = RefundFactory(order=order, amount=Decimal("5.00"))
    other = RefundFactory(order=OrderFactory(paid=True), amount=Decimal("7.00"))

    for term in ("payer@example.com", order.order_bid, refund.refund_bid, "5.00", "CN¥5"):
        response, count = found(admin_client, REFUNDS, term, "refund_bid")
        assert count == 1, term
        assert refund.refund_bid in response.content.decode()
    assert other.refund_bid in found(admin_client, REFUNDS, "7", "refund_bid")[0].content.decode()


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("19.90", (Decimal("19.90"), "")),
        ("CN¥19.90", (Decimal("19.90"), "")),
        ("US$ 6.99", (Decimal("6.99"), "")),
        ("19.90 CNY", (Decimal("19.90"), "cny")),
        ("JPY4800", (Decimal("4800"), "jpy")),
        ("1.999", None),
        ("order-1", None),
        ("a@b.c", None),
    ],
)
def test_parse_amount(term, expected):
    assert parse_amount(term) == expected


def test_each_product_account_or_amount_stands_for_its_newest_orders(admin_client, monkeypatch):
    from orders.admin import search

    monkeypatch.setattr(search, "MATCHES_EACH", 2)
    course = ProductFactory(name="Deep Learning")
    oldest, *newest = (
        OrderFactory(product_bid=course.product_bid, paid_price=Decimal("7.00")) for _ in range(3)
    )
    for term in ("deep learn", "7.00"):
        response, count = found(admin_client, ORDERS, term)
        html = response.content.decode()
        assert count == 2 and oldest.order_bid not in html
        assert all(order.order_bid in html for order in newest)
