"""Real threads on MariaDB: 20 concurrent grants give one entitlement; 20 concurrent
first requests of a platform user make one shadow account; 20 concurrent delivery
passes send each event once, in order; and the figures of a receiver's outage."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from bridge import outbox
from bridge.models import Delivery, DeliveryState, OutboundEvent, PlatformUser
from orders import services
from orders.models import Order, OrderStatus
from tests.bridge.conftest import USER_BID, platform_token
from tests.factories import ProductFactory
from tests.threads import run_together

pytestmark = [
    pytest.mark.mariadb,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sandbox_channel"),
]

THREADS = 20


def test_concurrent_grants_give_one_entitlement(receiver):
    product = ProductFactory()

    def grant(i):
        order, created = services.entitlement_grant(
            user_bid=USER_BID, product_bid=product.product_bid, reason=f"g{i}", source="partner:p"
        )
        return order.order_bid, created

    results = run_together(grant, THREADS)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({bid for bid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    paid = Order.objects.filter(user_bid=USER_BID, product_bid=product.product_bid)
    assert paid.count() == 1 and paid.get().status == OrderStatus.PAID
    outbox.deliveries_send()
    assert receiver.types() == ["entitlement.granted"]


def test_concurrent_first_requests_make_one_shadow_account(platform):
    token = platform_token()

    def first_request(i):
        return APIClient().get("/api/orders/", headers={"Token": token}).status_code

    assert run_together(first_request, THREADS) == [200] * THREADS
    assert PlatformUser.objects.filter(user_bid=USER_BID).count() == 1


def test_concurrent_delivery_passes_send_each_event_once_in_order(receiver):
    subjects = [f"order:{n}" for n in range(10)]
    receiver.down()  # what the commit sends at once fails: the threads send it all
    with transaction.atomic():
        for step in range(5):
            for subject in subjects:
                outbox.event_write(type="order.paid", subject=subject, data={"step": step})
    assert (receiver.refused, receiver.events) == (1, [])  # then the endpoint was failing
    receiver.down(False)
    Delivery.objects.update(next_at=timezone.now())

    def deliver(i):
        sent = 0
        while Delivery.objects.filter(state=DeliveryState.PENDING).exists():
            passed = outbox.deliveries_send(limit=10).sent
            sent += passed
            if not passed:  # the rest is claimed by others, or waits behind them
                time.sleep(0.01)
        return sent

    results = run_together(deliver, THREADS)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == receiver.posts - 1 == 50
    ids = [e["id"] for e in receiver.events]
    assert len(ids) == len(set(ids)) == 50
    for subject in subjects:
        steps = [e["data"]["step"] for e in receiver.events if e["id"] in _ids(subject)]
        assert steps == [0, 1, 2, 3, 4]


def _ids(subject: str) -> set[str]:
    return set(OutboundEvent.objects.filter(subject=subject).values_list("event_id", flat=True))


def test_events_reach_the_receiver_after_its_outage(receiver, settings, capsys):
    """What the closing note quotes: events written while the receiver is down are all
    delivered once it is back, in order; events/s and the delay after recovery, with a
    1 s retry base (the default 10 s doubles, at most an hour apart)."""
    settings.PLATFORM_WEBHOOK_RETRY_BASE_SECONDS = 1
    receiver.down()
    count = 200
    with transaction.atomic():
        for n in range(count):
            outbox.event_write(type="order.paid", subject=f"order:{n % 50}", data={"n": n})
    stop = threading.Event()

    def loop():  # what `manage.py deliver_events --loop` does
        try:
            while not stop.is_set():
                if not outbox.deliveries_send().sent:
                    time.sleep(0.2)
        finally:
            connection.close()

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        time.sleep(2.5)  # the outage: first tries and retries refused
        refused = receiver.refused
        receiver.down(False)
        recovered = time.monotonic()
        deadline = recovered + 60
        while len(receiver.events) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(30)
    assert len(receiver.events) == count, (len(receiver.events), receiver.refused)
    assert len({e["id"] for e in receiver.events}) == count
    for subject in range(50):
        ns = [e["data"]["n"] for e in receiver.events if e["data"]["n"] % 50 == subject]
        assert ns == sorted(ns)
    first, last = receiver.accepted_at[0], receiver.accepted_at[-1]

    # The drain rate of one sender: a backlog of 500 events over 100 orders, all due.
    receiver.down()
    with transaction.atomic():
        for n in range(500):
            outbox.event_write(type="order.paid", subject=f"drain:{n % 100}", data={"n": n})
    receiver.down(False)
    Delivery.objects.filter(state=DeliveryState.PENDING).update(next_at=timezone.now())
    started = time.monotonic()
    while outbox.deliveries_send().sent:
        pass
    drained = time.monotonic() - started
    assert len(receiver.events) == count + 500
    with capsys.disabled():
        print(
            f"\noutbound events after a receiver outage: {refused} POSTs refused during it; "
            f"{count} events over 50 orders delivered, the first {first - recovered:.2f} s "
            f"and the last {last - recovered:.2f} s after recovery (1 s retry base); one "
            f"sender drains a backlog of 500 at {500 / drained:.0f} events/s"
        )
    assert refused > 0
