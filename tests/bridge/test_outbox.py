"""Signed outbound events: written with their change, delivered after commit, retried
through a receiver's outage, in order per order, exactly once seen; dead-lettered after
the retry window; sent again by staff."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from bridge import outbox
from bridge.models import Delivery, DeliveryState, Endpoint, OutboundEvent
from bridge.signing import SignatureInvalid, signature, verify_signature
from orders import services
from orders.models import OrderStatus
from tests.bridge.conftest import RECEIVER_SECRET, USER_BID
from tests.bridge.receiver import EventReceiver
from tests.factories import OrderFactory, ProductFactory, StaffFactory
from tests.sandbox import paid_through_sandbox

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _channels(sandbox_channel):
    return sandbox_channel


def time_passes() -> None:
    """Every delivery waiting for a retry is due now."""
    Delivery.objects.filter(state=DeliveryState.PENDING).update(next_at=timezone.now())


def deliver_until_done(rounds: int = 30) -> int:
    for done in range(rounds):
        if not Delivery.objects.filter(state=DeliveryState.PENDING).exists():
            return done
        time_passes()
        outbox.deliveries_send()
    raise AssertionError("deliveries still pending")


# ---- the signature ----


def test_verify_signature_accepts_ours_and_refuses_the_rest():
    body = b'{"id":"evt_1","type":"order.paid"}'
    header = signature(body, RECEIVER_SECRET)
    assert verify_signature(body, header, RECEIVER_SECRET) > 0
    assert verify_signature(body.decode(), header, RECEIVER_SECRET)  # text works too
    # A rotation: several v1, one matching.
    rotated = header + ",v1=" + "0" * 64
    assert verify_signature(body, rotated, RECEIVER_SECRET)
    for bad_body, bad_header, secret in [
        (body + b" ", header, RECEIVER_SECRET),  # tampered
        (body, header, "another-secret"),  # wrong secret
        (body, "v1=" + header.split("v1=")[1], RECEIVER_SECRET),  # no timestamp
        (body, "t=abc,v1=00", RECEIVER_SECRET),
        (body, "", RECEIVER_SECRET),
    ]:
        with pytest.raises(SignatureInvalid):
            verify_signature(bad_body, bad_header, secret)
    old = signature(body, RECEIVER_SECRET, timestamp=int(time.time()) - 301)
    with pytest.raises(SignatureInvalid, match="ago"):
        verify_signature(body, old, RECEIVER_SECRET)
    assert verify_signature(body, old, RECEIVER_SECRET, tolerance=0)


# ---- the outbox ----


def test_events_are_written_with_their_change_and_only_then(receiver):
    order = OrderFactory(user_bid=USER_BID)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.order_cancel(order=order)
        assert OutboundEvent.objects.filter(type="order.cancelled").exists()
        raise RuntimeError("the change is rolled back")
    assert not OutboundEvent.objects.exists() and not Delivery.objects.exists()
    assert receiver.events == []


def test_each_event_is_seen_once_in_order_through_an_outage(
    receiver, django_capture_on_commit_callbacks
):
    receiver.fail_next(3)
    with django_capture_on_commit_callbacks(execute=True):
        order = paid_through_sandbox(user_bid=USER_BID, price="100.00")
    staff = StaffFactory()
    for amount in (Decimal("30.00"), None):
        with django_capture_on_commit_callbacks(execute=True):
            services.refund_request(order=order, amount=amount, reason="asked", actor=staff)
    other = OrderFactory(user_bid="user-2")
    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order=other)
    # One POST was tried, and refused: the order's later events waited behind it, never
    # overtaking it, and the other order's commit sent nothing to a failing endpoint.
    assert (receiver.posts, receiver.refused, receiver.events) == (1, 1, [])
    deliver_until_done()
    mine = [e for e in receiver.events if e["data"]["order_bid"] == order.order_bid]
    # In order per order, and the entitlement's in order per user and product.
    assert [e["type"] for e in mine if not e["type"].startswith("entitlement.")] == [
        "order.paid",
        "refund.succeeded",
        "refund.succeeded",
        "order.refunded",
    ]
    owned = [(e["type"], e["data"]["owned"]) for e in mine if e["type"].startswith("entitle")]
    assert owned == [("entitlement.granted", True), ("entitlement.revoked", False)]
    ids = [e["id"] for e in receiver.events]
    assert len(ids) == len(set(ids)) == OutboundEvent.objects.count()
    assert receiver.refused == 3 and receiver.bad_signatures == 0
    paid = mine[0]
    assert paid["data"]["user_bid"] == USER_BID
    assert paid["data"]["paid_amount"] == "100.00" and paid["data"]["status_code"] == 502
    refunds = [e for e in mine if e["type"] == "refund.succeeded"]
    assert [e["data"]["refund"]["amount"] for e in refunds] == ["30.00", "70.00"]
    assert [e["data"]["refunded_amount"] for e in refunds] == ["30.00", "100.00"]
    revoked = next(e for e in mine if e["type"] == "entitlement.revoked")
    assert revoked["data"]["cause"] == "refunded"
    first = Delivery.objects.get(event__event_id=paid["id"])
    assert first.attempts == 3 and first.tries.count() == 3
    assert list(first.tries.order_by("id").values_list("status", flat=True)) == [503, 503, 200]


def test_a_failed_delivery_waits_base_then_double(receiver, settings):
    receiver.down()
    settings.PLATFORM_WEBHOOK_RETRY_BASE_SECONDS = 7
    with transaction.atomic():
        outbox.event_write(type="order.paid", subject="order:x", data={})
    delivery = Delivery.objects.get()
    waits = []
    for _ in range(4):
        time_passes()
        before = timezone.now()
        outbox.deliveries_send()
        delivery.refresh_from_db()
        waits.append(round((delivery.next_at - before).total_seconds()))
    assert waits == [7, 14, 28, 56]
    assert delivery.state == DeliveryState.PENDING and delivery.last_status == 503


def test_after_the_window_a_delivery_is_dead_lettered_and_staff_send_it_again(receiver):
    receiver.down()
    with transaction.atomic():
        outbox.event_write(type="order.paid", subject="order:y", data={"n": 1})
        outbox.event_write(type="order.refunded", subject="order:y", data={"n": 2})
    outbox.deliveries_send()
    first, second = Delivery.objects.order_by("id")
    Delivery.objects.filter(pk=first.pk).update(
        window_from=timezone.now() - timedelta(hours=72), next_at=timezone.now()
    )
    outbox.deliveries_send()
    first.refresh_from_db()
    assert first.state == DeliveryState.DEAD
    # A dead letter no longer holds back the order's next event.
    receiver.down(False)
    time_passes()
    outbox.deliveries_send()
    second.refresh_from_db()
    assert second.state == DeliveryState.DELIVERED
    assert outbox.deliveries_redeliver(Delivery.objects.filter(pk=first.pk)) == 1
    call_command("deliver_events", stdout=io.StringIO())
    first.refresh_from_db()
    assert first.state == DeliveryState.DELIVERED
    assert (first.attempts, first.tries.count()) == (1, 3)  # counted anew after staff's send
    assert [e["data"]["n"] for e in receiver.events] == [2, 1]


def test_every_active_endpoint_gets_every_event(receiver, django_capture_on_commit_callbacks):
    with EventReceiver("second-endpoint-secret-0123") as second:
        Endpoint.objects.create(name="analytics", url=second.url, secret=second.secret)
        Endpoint.objects.create(name="off", url=second.url, secret="x" * 16, active=False)
        with django_capture_on_commit_callbacks(execute=True):
            services.order_cancel(order=OrderFactory())
        assert receiver.types() == second.types() == ["order.cancelled"]
        assert second.posts == 1  # the inactive endpoint got nothing


def test_only_https_or_loopback_endpoints(settings):
    settings.DEBUG = False
    assert outbox.url_allowed("https://platform.example/hooks")
    assert outbox.url_allowed("http://127.0.0.1:9000/hooks")
    assert outbox.url_allowed("http://localhost/hooks")
    assert not outbox.url_allowed("http://platform.example/hooks")
    assert not outbox.url_allowed("ftp://platform.example/hooks")
    from bridge.checks import check_platform_settings

    settings.PLATFORM_WEBHOOK_URL = "http://platform.example/hooks"
    settings.PLATFORM_WEBHOOK_SECRET = ""
    ids = {message.id for message in check_platform_settings()}
    assert {"config.E019", "config.E020"} <= ids
    # An endpoint that is not allowed is never POSTed to: the delivery fails and stays.
    endpoint = Endpoint.objects.create(name="plain", url="http://platform.example/x", secret="s")
    settings.PLATFORM_WEBHOOK_URL = ""
    with transaction.atomic():
        outbox.event_write(type="order.paid", subject="order:z", data={})
    outbox.deliveries_send()
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.state == DeliveryState.PENDING and "not an https" in delivery.last_error


def test_grants_and_revokes_are_heard(receiver, django_capture_on_commit_callbacks):
    product = ProductFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.entitlement_grant(
            user_bid=USER_BID, product_bid=product.product_bid, reason="gift", source="partner:p"
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.entitlement_revoke(
            user_bid=USER_BID, product_bid=product.product_bid, reason="oops", source="partner:p"
        )
    granted, revoked = receiver.events
    assert (granted["type"], granted["data"]["cause"], granted["data"]["reason"]) == (
        "entitlement.granted", "granted", "gift")  # fmt: skip
    assert (revoked["type"], revoked["data"]["cause"], revoked["data"]["status_code"]) == (
        "entitlement.revoked", "revoked", OrderStatus.REVOKED)  # fmt: skip
    assert json.loads(OutboundEvent.objects.get(event_id=granted["id"]).body) == granted


def test_an_endpoint_that_does_not_answer_costs_one_try_per_pass(settings):
    Endpoint.objects.create(name="gone", url="http://127.0.0.1:9/hooks", secret="s" * 16)
    settings.PLATFORM_WEBHOOK_URL = ""
    with transaction.atomic():
        for n in range(3):
            outbox.event_write(type="order.paid", subject=f"order:{n}", data={})
    report = outbox.deliveries_send()
    assert (report.sent, report.failed) == (1, 1)
    attempts = sorted(Delivery.objects.values_list("attempts", flat=True))
    assert attempts == [0, 0, 1]  # the other two: due again for the next pass
    assert Delivery.objects.filter(attempts=0, next_at__lte=timezone.now()).count() == 2


def test_delivered_events_are_pruned_after_30_days_the_rest_kept(receiver):
    with transaction.atomic():
        for type in ("order.paid", "order.refunded", "order.cancelled"):
            outbox.event_write(type=type, subject=f"order:{type}", data={})
    outbox.deliveries_send()
    Delivery.objects.filter(event__type="order.refunded").update(state=DeliveryState.DEAD)
    Delivery.objects.filter(event__type="order.cancelled").update(
        state=DeliveryState.PENDING, delivered_at=None
    )
    OutboundEvent.objects.update(created_at=timezone.now() - timedelta(days=31))
    from bridge.tasks import prune_outbound_events

    assert prune_outbound_events.delay().get() == 1
    assert sorted(OutboundEvent.objects.values_list("type", flat=True)) == [
        "order.cancelled",
        "order.refunded",
    ]
    assert outbox.events_prune() == 0


def test_the_retry_wait_never_passes_an_hour_and_never_overflows(receiver, settings):
    assert outbox.retry_delay(1) == timedelta(seconds=10)
    assert outbox.retry_delay(9) == timedelta(seconds=2560)
    assert outbox.retry_delay(10) == timedelta(hours=1)
    assert outbox.retry_delay(10_000) == timedelta(hours=1)
    receiver.down()
    with transaction.atomic():
        outbox.event_write(type="order.paid", subject="order:w", data={})
    Delivery.objects.update(attempts=500, window_from=timezone.now())
    outbox.deliveries_send()
    delivery = Delivery.objects.get()
    assert delivery.attempts == 501 and delivery.state == DeliveryState.PENDING


def test_the_retry_window_starts_with_the_first_post(receiver):
    receiver.down()
    with transaction.atomic():
        outbox.event_write(type="order.paid", subject="order:v", data={"n": 1})
        outbox.event_write(type="order.refunded", subject="order:v", data={"n": 2})
    long_ago = timezone.now() - timedelta(hours=80)
    Delivery.objects.update(window_from=long_ago, created_at=long_ago)
    first, second = Delivery.objects.order_by("id")
    Delivery.objects.filter(pk=first.pk).update(state=DeliveryState.DEAD)  # out of the way
    time_passes()
    outbox.deliveries_send()
    second.refresh_from_db()
    # It waited 80 hours behind the first; its own three days start now.
    assert second.state == DeliveryState.PENDING and second.attempts == 1
    assert second.window_from > timezone.now() - timedelta(minutes=1)


def test_staff_cannot_resend_a_delivery_still_pending(receiver):
    receiver.down()
    with transaction.atomic():
        outbox.event_write(type="order.paid", subject="order:u", data={})
    outbox.deliveries_send()
    delivery = Delivery.objects.get()
    assert outbox.deliveries_redeliver([delivery]) == 0
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.next_at > timezone.now()


def test_a_request_commits_without_waiting_for_a_failing_endpoint(
    receiver, django_capture_on_commit_callbacks
):
    receiver.down()
    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order=OrderFactory())
    assert receiver.posts == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order=OrderFactory())
    assert receiver.posts == 1  # the endpoint is failing: left to the retries
    receiver.down(False)
    deliver_until_done()
    assert receiver.types() == ["order.cancelled", "order.cancelled"]


def test_a_long_trickling_answer_is_cut_at_the_time_limit(receiver, settings):
    settings.PLATFORM_WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.trickle = 0.05  # 100 kB, 1 kB every 50 ms: 5 s to read it all
    with transaction.atomic():
        outbox.event_write(type="order.paid", subject="order:t", data={})
    started = time.monotonic()
    outbox.deliveries_send()
    assert time.monotonic() - started < 3
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.DELIVERED  # the status line said 200
    attempt = delivery.tries.get()
    assert attempt.status == 200 and 0 < len(attempt.answer) <= outbox.ANSWER_KEPT
