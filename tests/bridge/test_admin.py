"""The platform bridge in the support console: deliveries with their attempts, sent
again by staff; keys made (shown once) and revoked; endpoints https only; a granted or
revoked order's page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from bridge.models import ApiKey, Delivery, DeliveryState, Endpoint
from bridge.partners import api_key_find
from orders import services
from tests.bridge.conftest import USER_BID
from tests.factories import OrderFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _channels(sandbox_channel):
    return sandbox_channel


def test_deliveries_show_their_attempts_and_are_sent_again(
    admin_client, receiver, django_capture_on_commit_callbacks
):
    receiver.down()
    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order=OrderFactory(user_bid=USER_BID))
    delivery = Delivery.objects.get()
    listing = admin_client.get(reverse("admin:bridge_delivery_changelist"))
    assert listing.status_code == 200 and "order.cancelled" in listing.content.decode()
    page = admin_client.get(reverse("admin:bridge_delivery_change", args=[delivery.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "503" in html and USER_BID in html
    event_page = admin_client.get(
        reverse("admin:bridge_outboundevent_change", args=[delivery.event_id])
    )
    assert event_page.status_code == 200
    receiver.down(False)
    Delivery.objects.update(state=DeliveryState.DEAD)
    admin_client.post(
        reverse("admin:bridge_delivery_changelist"),
        {"action": "redeliver", "_selected_action": [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PENDING
    from bridge.outbox import deliveries_send

    deliveries_send()
    assert receiver.types() == ["order.cancelled"]


def test_a_key_made_in_the_admin_is_shown_once_and_revoked_there(admin_client):
    answer = admin_client.post(
        reverse("admin:bridge_apikey_add"),
        {"name": "backend", "scopes": ["entitlements", "products"]},
        follow=True,
    )
    assert answer.status_code == 200
    key = re.search(r"psk_[A-Za-z0-9_-]+", answer.content.decode()).group(0)
    row = ApiKey.objects.get(name="backend")
    assert api_key_find(key) == row and sorted(row.scopes) == ["entitlements", "products"]
    admin_client.post(
        reverse("admin:bridge_apikey_changelist"),
        {"action": "revoke", "_selected_action": [row.pk]},
    )
    assert api_key_find(key) is None
    page = admin_client.get(reverse("admin:bridge_apikey_change", args=[row.pk]))
    assert key not in page.content.decode()


def test_endpoints_are_https_and_keep_their_secret(admin_client, settings):
    settings.DEBUG = False
    url = reverse("admin:bridge_endpoint_add")
    form = {"name": "x", "url": "http://example.com/h", "secret": "s" * 20, "active": "on"}
    refused = admin_client.post(url, form)
    assert refused.status_code == 200 and not Endpoint.objects.exists()
    admin_client.post(url, {**form, "url": "https://example.com/h"})
    endpoint = Endpoint.objects.get()
    page = admin_client.get(reverse("admin:bridge_endpoint_change", args=[endpoint.pk]))
    assert "s" * 20 not in page.content.decode()


def test_a_granted_then_revoked_order_shows_in_the_console(admin_client):
    product = ProductFactory()
    order, _ = services.entitlement_grant(
        user_bid=USER_BID, product_bid=product.product_bid, reason="gift", source="partner:p"
    )
    services.entitlement_revoke(
        user_bid=USER_BID, product_bid=product.product_bid, reason="oops", source="partner:p"
    )
    page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "revoked by partner:p: oops" in html and "granted by partner:p: gift" in html
    listing = admin_client.get(reverse("admin:orders_order_changelist"), {"q": order.order_bid})
    assert listing.status_code == 200
