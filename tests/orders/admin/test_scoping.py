"""Creator scoping: a staff account linked to creators sees, exports and refunds only
the orders of their courses; another creator's order is not found (404)."""

from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from bridge.partners import api_key_create
from orders import services
from orders.models import StaffCreator
from orders.selectors import staff_creator_scope
from orders.services import staff as staff_services
from tests.factories import (
    OrderFactory,
    PingxxOrderFactory,
    ProductFactory,
    RefundFactory,
    StaffFactory,
    UserFactory,
)
from tests.orders.admin.helpers import ORDERS, REFUNDS, change_url, rows

pytestmark = pytest.mark.django_db

PINGXX = reverse("admin:payments_pingxxorder_changelist")


def agent(*creators, perms=("view_order", "view_refund", "add_refund", "view_pingxxorder")):
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    for creator in creators:
        StaffCreator.objects.create(user=user, creator_bid=creator)
    return user


@pytest.fixture
def world():
    """Two creators' orders: one of creator A by its own column, one of A by its
    product (made before products carried their creator), one of creator B."""
    mine = ProductFactory(name="A's course", creator_bid="creator-a")
    theirs = ProductFactory(name="B's course", creator_bid="creator-b")
    return {
        "a_column": OrderFactory(paid=True, creator_bid="creator-a"),
        "a_product": OrderFactory(paid=True, product_bid=mine.product_bid),
        "b": OrderFactory(paid=True, creator_bid="creator-b", product_bid=theirs.product_bid),
    }


def listed(client, url=ORDERS, **params):
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def test_scope_rule_superuser_unlinked_and_linked_staff():
    assert staff_creator_scope(StaffFactory()) is None
    assert staff_creator_scope(agent()) is None
    assert staff_creator_scope(agent("c1", "c2")) == frozenset({"c1", "c2"})
    superuser = StaffFactory()
    StaffCreator.objects.create(user=superuser, creator_bid="c1")
    assert staff_creator_scope(superuser) is None


def test_a_scoped_agent_lists_and_searches_only_their_creators_orders(client, world):
    client.force_login(agent("creator-a"))

    html = listed(client)
    assert world["a_column"].order_bid in html and world["a_product"].order_bid in html
    assert world["b"].order_bid not in html
    assert rows(client.get(ORDERS, {"q": world["b"].order_bid})) == 0
    assert rows(client.get(ORDERS, {"q": "B's course"})) == 0
    assert rows(client.get(ORDERS, {"q": "A's course"})) == 1


def test_a_superuser_and_an_unlinked_agent_see_everything(client, admin_client, world):
    assert all(order.order_bid in listed(admin_client) for order in world.values())
    client.force_login(agent())
    assert all(order.order_bid in listed(client) for order in world.values())


def test_a_scoped_export_holds_only_the_scope(client, world):
    client.force_login(agent("creator-a"))
    response = client.get(reverse("admin:orders_order_export"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert world["a_column"].order_bid in text and world["a_product"].order_bid in text
    assert world["b"].order_bid not in text


def test_another_creators_order_page_refund_form_and_views_are_not_found(client, world):
    client.force_login(
        agent("creator-a", perms=("view_order", "add_refund", "change_order", "view_refund"))
    )
    other = world["b"]
    for url in (
        change_url(other),
        reverse("admin:orders_order_history", args=[other.pk]),
        reverse("admin:orders_order_refund", args=[other.pk]),
        reverse("admin:orders_order_mark_paid", args=[other.pk]),
        reverse("admin:orders_order_by_bid", args=[other.order_bid]),
        reverse("admin:orders_order_dashboard"),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("admin:orders_order_sync", args=[other.pk])).status_code == 404
    assert client.get(change_url(world["a_product"])).status_code == 200


def test_the_refund_service_is_reached_only_in_scope(client, world):
    client.force_login(agent("creator-a"))
    form = {"amount": "1.00", "reason": "asked", "confirm": "1"}
    with mock.patch.object(
        staff_services, "refund_request_staff", wraps=staff_services.refund_request_staff
    ) as requested:
        refused = client.post(reverse("admin:orders_order_refund", args=[world["b"].pk]), form)
        assert refused.status_code == 404
        assert not requested.called
        done = client.post(reverse("admin:orders_order_refund", args=[world["a_column"].pk]), form)
        assert done.status_code == 302
        assert requested.call_args.kwargs["order"].pk == world["a_column"].pk


def test_refunds_and_attempts_of_another_creator_are_not_listed(client, world):
    mine = RefundFactory(order=world["a_column"], amount=Decimal("1.00"))
    theirs = RefundFactory(order=world["b"], amount=Decimal("1.00"))
    PingxxOrderFactory(order_bid=world["a_column"].order_bid, charge_id="ch_mine")
    PingxxOrderFactory(order_bid=world["b"].order_bid, charge_id="ch_theirs")
    client.force_login(agent("creator-a"))

    html = listed(client, REFUNDS)
    assert mine.refund_bid in html and theirs.refund_bid not in html
    assert client.get(change_url(theirs)).status_code == 404
    html = listed(client, PINGXX)
    assert "ch_mine" in html and "ch_theirs" not in html


def test_a_new_order_takes_its_products_creator(sandbox_channel):
    product = ProductFactory(creator_bid="creator-a")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    assert order.creator_bid == "creator-a"


def test_the_partner_api_keeps_a_products_creator_and_grants_carry_it(sandbox_channel):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key_create(name="b", scopes=["products"])[1])
    body = {"name": "C", "price": "9.90", "currency": "cny", "active": True}
    made = client.put("/api/products/p1/", {**body, "creator_bid": "creator-a"}, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["creator_bid"] == "creator-a"
    kept = client.put("/api/products/p1/", {**body, "name": "C2"}, format="json")
    assert kept.json()["creator_bid"] == "creator-a"

    order, _ = services.entitlement_grant(
        user_bid="u1", product_bid="p1", reason="gift", source="admin"
    )
    assert order.creator_bid == "creator-a"


# ---- what the scope reaches beyond the admin's order pages ----


def test_the_api_shows_and_refunds_only_the_creators_orders(client, world, sandbox_channel):
    user = agent("creator-a")
    client.force_login(user)
    listed_bids = {o["order_bid"] for o in client.get("/api/orders/").json()["results"]}
    assert listed_bids == {world["a_column"].order_bid, world["a_product"].order_bid}
    assert client.get(f"/api/orders/{world['b'].order_bid}/").status_code == 404
    api = APIClient()
    api.force_authenticate(user)
    refused = api.post(
        "/api/refunds/",
        {"order": world["b"].order_bid, "amount": "1.00", "reason": "x"},
        format="json",
    )
    assert refused.status_code == 404 and not world["b"].refunds.exists()


def test_a_linked_lead_is_granted_only_what_the_scope_covers(client, world):
    lead = agent(
        "creator-a",
        perms=("view_order", "add_refund", "view_product", "change_product", "add_order",
               "view_couponusage", "view_platformuser", "change_refundapproval"),
    )  # fmt: skip
    assert lead.has_perm("orders.change_refundapproval") and lead.has_perm("orders.view_order")
    for refused in ("orders.change_product", "orders.add_order", "promos.view_couponusage",
                    "bridge.view_platformuser"):  # fmt: skip
        assert not lead.has_perm(refused), refused
    client.force_login(lead)
    products = listed(client, reverse("admin:orders_product_changelist"))
    assert "A&#x27;s course" in products and "B&#x27;s course" not in products
    theirs = world["b"].product_bid
    product_pk = ProductFactory._meta.model.objects.get(product_bid=theirs).pk
    assert client.get(reverse("admin:orders_product_change", args=[product_pk])).status_code in (
        302,
        404,
    )
    assert client.get(reverse("admin:orders_product_bulk_grant")).status_code == 403
    assert client.get(reverse("admin:promos_couponusage_changelist")).status_code == 403
    # The same account unlinked has its permissions back.
    StaffCreator.objects.filter(user=lead).delete()
    unlinked = type(lead).objects.get(pk=lead.pk)
    assert unlinked.has_perm("orders.change_product")


def test_a_search_picks_the_newest_orders_within_the_scope(client, monkeypatch):
    from orders.admin import search

    monkeypatch.setattr(search, "MATCHES_EACH", 3)
    mine = OrderFactory(paid=True, creator_bid="creator-a", user_bid="buyer-1")
    OrderFactory.create_batch(3, paid=True, creator_bid="creator-b", user_bid="buyer-1")
    client.force_login(agent("creator-a"))
    html = listed(client, q="buyer-1")
    assert mine.order_bid in html and rows(client.get(ORDERS, {"q": "buyer-1"})) == 1


def test_an_order_page_of_no_id_at_all_is_not_found(client):
    client.force_login(agent())
    # Django's answer to an order that is not there: back to the index, with a message.
    assert client.get(f"{ORDERS}abc/change/").status_code == 302
    assert client.get(f"{ORDERS}abc/refund/").status_code == 404
