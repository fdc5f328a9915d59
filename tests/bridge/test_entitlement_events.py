"""The entitlement events say when a user's ownership of a product changes, and only
then; a refund the provider fails after it succeeded is heard as refund.reversed, with
the order's figures once restored; a revoked order reversed stays unowned."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bridge.models import OutboundEvent
from orders import services
from orders.models import OrderStatus
from payments.tasks import webhook_deliver
from tests.bridge.conftest import USER_BID
from tests.factories import OrderFactory, StaffFactory
from tests.orders.services.helpers import refund_event
from tests.sandbox import paid_through_sandbox

pytestmark = pytest.mark.django_db
S = OrderStatus


@pytest.fixture(autouse=True)
def _channels(sandbox_channel):
    return sandbox_channel


def written(*types: str) -> list[tuple[str, dict]]:
    """The events written, oldest first (of ``types``, or all)."""
    rows = OutboundEvent.objects.order_by("id")
    events = [(row.type, json.loads(row.body)["data"]) for row in rows]
    return [(t, d) for t, d in events if not types or t in types]


def test_a_second_paid_order_neither_grants_nor_revokes_what_another_owns():
    owning = OrderFactory(user_bid=USER_BID, status=S.PAID, paid_price=Decimal("10.00"))
    late = OrderFactory(user_bid=USER_BID, product_bid=owning.product_bid, status=S.TIMEOUT)
    services.order_set_status(order=late, to=S.PAID, source="test", changes={
        "paid_price": Decimal("10.00")})  # fmt: skip
    services.order_set_status(order=late, to=S.REFUNDED, source="test")
    assert [t for t, _ in written()] == ["order.paid", "order.refunded"]
    services.order_set_status(order=owning, to=S.REVOKED, source="partner:p")
    ((_, data),) = written("entitlement.revoked")
    assert (data["order_bid"], data["owned"], data["cause"]) == (owning.order_bid, False, "revoked")
    event = OutboundEvent.objects.get(type="entitlement.revoked")
    assert event.subject == f"entitlement:{USER_BID}:{owning.product_bid}"


def test_a_refund_reversed_is_heard_with_the_restored_figures():
    order = paid_through_sandbox(user_bid=USER_BID, price="19.90")
    refund = services.refund_request(order=order, reason="all of it", actor=StaffFactory())
    body, headers = refund_event("evt_reversed", refund, "failed")
    assert webhook_deliver(channel="sandbox", body=body, headers=headers).http_status == 200
    types = [t for t, _ in written()]
    assert types[-4:] == ["order.refunded", "entitlement.revoked", "entitlement.granted",
                          "refund.reversed"]  # fmt: skip
    _, reversed_ = written("refund.reversed")[0]
    assert (reversed_["status"], reversed_["refunded_amount"]) == ("paid", "0.00")
    assert reversed_["refund"]["status"] == "failed"
    assert "refund.failed" not in types  # it did not fail before it was paid out


def test_a_revoked_order_refunded_then_reversed_stays_revoked_and_unowned():
    order = paid_through_sandbox(user_bid=USER_BID, price="19.90")
    services.entitlement_revoke(user_bid=USER_BID, product_bid=order.product_bid, reason="r",
                                source="partner:p")  # fmt: skip
    refund = services.refund_request(order=order, reason="money back", actor=StaffFactory())
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    body, headers = refund_event("evt_reversed", refund, "failed")
    webhook_deliver(channel="sandbox", body=body, headers=headers)
    order.refresh_from_db()
    assert order.status == S.REVOKED and order.refunded_price == 0
    assert [t for t, _ in written("entitlement.granted", "entitlement.revoked")] == [
        "entitlement.granted", "entitlement.revoked"]  # fmt: skip


def test_a_grant_is_not_swallowed_by_a_full_refund_under_way(settings):
    settings.REFUND_APPROVAL_THRESHOLDS = {"cny": 100}
    order = paid_through_sandbox(user_bid=USER_BID, price="19.90")
    held = services.refund_request(order=order, reason="all", actor=StaffFactory())
    assert held.__class__.__name__ == "RefundApproval"  # awaits approval: holds it all
    granted, created = services.entitlement_grant(
        user_bid=USER_BID, product_bid=order.product_bid, reason="keep it", source="partner:p"
    )
    assert created and granted.order_bid != order.order_bid
    assert written("entitlement.granted")[-1][1]["order_bid"] == order.order_bid  # one grant
