"""Webhook events applied by real Celery workers, started by the tests, on the
machine's Redis and RabbitMQ and on the MariaDB test database: at-least-once delivery
gives exactly one application.

Each test sends to a queue of its own, so that nothing another run left in a broker
reaches its worker; the beat test, whose beat sends to the default queue, empties its
Redis database first.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from kombu import Connection

from bridge.models import Delivery, DeliveryState
from orders import services
from orders.models import Order, OrderStatus
from payments import registry
from payments.models import InboxStatus, WebhookEvent
from payments.tasks import webhook_deliver
from payments_project.celery import app
from tests.bridge.conftest import RECEIVER_SECRET, receiver  # noqa: F401  (fixture)
from tests.factories import OrderFactory, ProductFactory
from tests.redis_server import require_redis
from tests.threads import run_together

ROOT = Path(__file__).resolve().parents[2]
REDIS = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
RABBITMQ = os.environ.get("TEST_AMQP_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")

pytestmark = [pytest.mark.mariadb, pytest.mark.django_db(transaction=True)]


def require_broker(url: str) -> None:
    if url.startswith("redis"):
        require_redis(url)
        return
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the broker at {url} is not reachable, and CI must provide it: {exc}")
        pytest.skip(f"needs a broker at {url}")


class Worker:
    """``python -m tests.worker`` on one queue, its output in a file."""

    def __init__(self, broker: str, queue: str, log: Path, **env: str) -> None:
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 3306}/{db['NAME']}",
            "CELERY_BROKER_URL": broker,
            "PAYMENT_CHANNELS_ENABLED": "sandbox",
            "DEFAULT_PAYMENT_CHANNEL": "sandbox",
            "DEBUG": "true",
            **env,
        }
        self.queue = queue
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        args = [sys.executable, "-m", "tests.worker", "--pool=prefork", "--concurrency=1"]
        args += ["-Q", self.queue, "--without-gossip", "--without-mingle", "--loglevel=INFO"]
        return self._run(args)

    def start_beat(self, schedule: Path) -> Worker:
        """Celery beat instead, its schedule state in ``schedule``."""
        args = [sys.executable, "-m", "celery", "-A", "payments_project", "beat"]
        return self._run([*args, "--loglevel=INFO", "--schedule", str(schedule)])

    def _run(self, args: list[str]) -> Worker:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@contextmanager
def broker(url: str) -> Iterator[str]:
    """This process sends its tasks to ``url``, on a queue of its own (yielded)."""
    require_broker(url)
    queue = f"test-{uuid.uuid4().hex[:12]}"
    before = {
        key: app.conf[key] for key in ("broker_url", "task_always_eager", "task_default_queue")
    }
    app.conf.update(broker_url=url, task_always_eager=False, task_default_queue=queue)
    app._pool = None  # connections are made anew for this broker
    app.amqp._producer_pool = None
    try:
        yield queue
    finally:
        app.conf.update(before)
        app._pool = None
        app.amqp._producer_pool = None
        with Connection(url) as conn, contextlib.suppress(Exception):
            conn.default_channel.queue_delete(queue)  # fails if never declared


@pytest.fixture
def workers(tmp_path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def a_paid_delivery() -> tuple[Order, bytes, dict]:
    """An unpaid sandbox order and the signed event that pays it."""
    product = ProductFactory(price=Decimal("19.90"), currency="cny")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    body, headers = registry.get_provider("sandbox").complete(attempt.attempt_bid, succeeded=True)
    return order, body, headers


def settled(workers: list[Worker], timeout: float = 90) -> WebhookEvent:
    """The test's one inbox row once no longer received or failed; fails with the
    workers' output if it takes longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = WebhookEvent.objects.first()
        if row is not None and row.status not in (InboxStatus.RECEIVED, InboxStatus.FAILED):
            return row
        time.sleep(0.2)
    pytest.fail("not applied in time:\n" + "\n".join(w.output()[-3000:] for w in workers))


def applied_once(order: Order, row: WebhookEvent) -> None:
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.events.filter(to_status=OrderStatus.PAID).count() == 1
    assert (row.status, row.attempts) == (InboxStatus.APPLIED, 1)


@pytest.mark.parametrize("url", [REDIS, RABBITMQ], ids=["redis", "rabbitmq"])
def test_an_event_acknowledged_while_no_worker_runs_is_applied_when_one_starts(
    url, sandbox_channel, workers, tmp_path
):
    order, body, headers = a_paid_delivery()
    with broker(url) as queue:
        outcome = webhook_deliver(channel="sandbox", body=body, headers=headers)
        assert (outcome.http_status, outcome.code) == (200, "received")
        time.sleep(1)
        row = WebhookEvent.objects.get()
        assert row.status == InboxStatus.RECEIVED  # stored and waiting in the broker

        workers.append(Worker(url, queue, tmp_path / "worker.log").start())
        applied_once(order, settled(workers))


def test_a_task_killed_half_way_is_applied_once_after_redelivery(
    sandbox_channel, workers, tmp_path
):
    marker = tmp_path / "crashed"
    order, body, headers = a_paid_delivery()
    with broker(REDIS) as queue:
        workers.append(
            Worker(REDIS, queue, tmp_path / "worker.log", CRASH_MARKER=str(marker)).start()
        )
        webhook_deliver(channel="sandbox", body=body, headers=headers)
        row = settled(workers)
    assert marker.exists(), workers[0].output()  # the first try died half-way
    assert "WorkerLostError" in workers[0].output() or "exited" in workers[0].output()
    applied_once(order, row)


def test_twenty_duplicate_deliveries_while_a_worker_runs_give_one_application(
    sandbox_channel, workers, tmp_path
):
    order, body, headers = a_paid_delivery()
    with broker(REDIS) as queue:
        workers.append(Worker(REDIS, queue, tmp_path / "worker.log").start())
        outcomes = run_together(
            lambda i: webhook_deliver(channel="sandbox", body=body, headers=headers)
        )
        assert all(getattr(o, "http_status", None) == 200 for o in outcomes), outcomes
        row = settled(workers)
        time.sleep(2)  # the other tasks sent for the repeats run too, and change nothing
    assert WebhookEvent.objects.count() == 1
    row.refresh_from_db()
    applied_once(order, row)


def test_beat_schedules_the_work_a_worker_then_does(sandbox_channel, workers, tmp_path):
    """A real beat, with expiry every second, and a worker on the default queue: an
    unpaid order past its time is timed out without anyone asking."""
    from datetime import timedelta

    from django.utils import timezone

    require_broker(REDIS)  # empties the test's Redis database, queues included
    product = ProductFactory(price=Decimal("19.90"), currency="cny")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(hours=1))

    worker = Worker(REDIS, "celery", tmp_path / "worker.log").start()
    workers.append(worker)
    beat = Worker(REDIS, "celery", tmp_path / "beat.log", EXPIRE_INTERVAL_SECONDS="1")
    workers.append(beat.start_beat(tmp_path / "beat-schedule"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        order.refresh_from_db()
        if order.status == OrderStatus.TIMEOUT:
            break
        time.sleep(0.3)
    assert order.status == OrderStatus.TIMEOUT, beat.output()[-2000:] + worker.output()[-2000:]
    assert "orders.expire_orders" in beat.output()


def test_outbound_events_are_sent_by_a_worker(
    sandbox_channel,
    workers,
    tmp_path,
    receiver,  # noqa: F811
):
    """A change committed here sends its events' task to the broker; a worker POSTs
    them, signed with its own PLATFORM_WEBHOOK_SECRET, to the platform's receiver."""
    with broker(REDIS) as queue:
        workers.append(
            Worker(
                REDIS,
                queue,
                tmp_path / "worker.log",
                PLATFORM_WEBHOOK_URL=receiver.url,
                PLATFORM_WEBHOOK_SECRET=RECEIVER_SECRET,
            ).start()
        )
        order = OrderFactory()
        services.order_cancel(order=order)
        deadline = time.monotonic() + 90
        while not receiver.events and time.monotonic() < deadline:
            time.sleep(0.2)
    assert receiver.types() == ["order.cancelled"], workers[0].output()[-3000:]
    assert receiver.events[0]["data"]["order_bid"] == order.order_bid
    assert Delivery.objects.get().state == DeliveryState.DELIVERED
