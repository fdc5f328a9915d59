"""Background work on Celery: the tasks, their schedules, the embedded default (eager, no
broker), and a real worker on the machine's Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from orders import services, tasks
from orders.models import Order, OrderStatus
from payments.models import InboxStatus, WebhookEvent
from payments.tasks import prune_webhook_events
from payments_project import config
from payments_project.celery import app
from tests.factories import ProductFactory, WebhookEventFactory
from tests.redis_server import require_redis

ROOT = Path(__file__).resolve().parents[2]
REDIS_BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")


def an_expired_order() -> Order:
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(hours=1))
    return order


def test_without_a_broker_tasks_run_in_process():
    """The embedded default: no broker, no worker; tasks run in the calling process."""
    assert config.load({})["CELERY_BROKER_URL"] == ""
    assert django_settings.CELERY_TASK_ALWAYS_EAGER is True
    assert app.conf.task_always_eager is True


@pytest.mark.django_db  # a worker's start checks the models
def test_beat_runs_each_job_on_its_interval():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert {entry["task"] for entry in schedule.values()} == {
        "orders.reconcile_payments",
        "orders.expire_orders",
        "payments.sweep_webhook_inbox",
        "payments.prune_webhook_events",
        "bridge.deliver_events",
        "bridge.prune_outbound_events",
    }
    assert schedule["reconcile-payments"]["schedule"] == django_settings.RECONCILE_INTERVAL_SECONDS
    assert schedule["expire-orders"]["schedule"] == django_settings.EXPIRE_INTERVAL_SECONDS
    # What a worker and beat import at start: every app's tasks module.
    app.loader.import_default_modules()
    for entry in schedule.values():
        assert entry["task"] in app.tasks, entry["task"]


@pytest.mark.django_db
def test_the_tasks_do_the_commands_work(sandbox_channel):
    order = an_expired_order()
    assert tasks.expire_orders.delay().get() == {"expired": 1, "skipped": 0, "errors": 0}
    order.refresh_from_db()
    assert order.status == OrderStatus.TIMEOUT
    assert tasks.reconcile_payments.delay().get()["errors"] == 0

    old = WebhookEventFactory(status=InboxStatus.APPLIED)
    WebhookEvent.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=91))
    kept = WebhookEventFactory(status=InboxStatus.FAILED)
    WebhookEvent.objects.filter(pk=kept.pk).update(received_at=timezone.now() - timedelta(days=91))
    assert prune_webhook_events.delay().get() == 1
    assert list(WebhookEvent.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.fixture
def worker():
    """A real Celery worker on Redis, on the test database, started for the test."""
    require_redis(REDIS_BROKER)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 3306}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_BROKER,
        "PAYMENT_CHANNELS_ENABLED": "sandbox",
        "DEFAULT_PAYMENT_CHANNEL": "sandbox",
        "DEBUG": "true",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "payments_project",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_redis_runs_a_queued_task(worker, sandbox_channel):
    order = an_expired_order()
    previous = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.update(broker_url=REDIS_BROKER, task_always_eager=False)
    try:
        with app.connection_for_write(REDIS_BROKER) as conn:
            tasks.expire_orders.apply_async(connection=conn)
    finally:
        app.conf.update(broker_url=previous[0], task_always_eager=previous[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        order.refresh_from_db()
        if order.status == OrderStatus.TIMEOUT:
            break
        assert worker.poll() is None, worker.stdout.read()
        time.sleep(0.5)
    assert order.status == OrderStatus.TIMEOUT
    assert order.events.filter(to_status=OrderStatus.TIMEOUT).count() == 1
