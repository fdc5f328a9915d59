"""The inbox with a broker: a delivery is stored and acknowledged in its request, and a
task applies it after the commit, retrying with back-off; a sweeper enqueues again what
no task holds. The tasks here are called in the test's process; tests/project/
test_tasks.py runs them in a real worker."""

from datetime import timedelta
from decimal import Decimal

import pytest
from celery.exceptions import Retry
from django.core.checks import run_checks
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import services
from orders.models import OrderStatus
from payments import registry, tasks
from payments.models import InboxStatus, WebhookEvent
from payments.tasks import webhook_deliver
from payments_project.celery import app
from tests.factories import ProductFactory, WebhookEventFactory

pytestmark = pytest.mark.django_db


def an_unpaid_sandbox_order():
    product = ProductFactory(price=Decimal("19.90"), currency="cny")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    return order, started.attempt


def deliver(body, headers):
    return webhook_deliver(channel="sandbox", body=body, headers=headers)


def test_a_delivery_is_stored_and_acknowledged_then_a_task_applies_it(
    sandbox_channel, queued, django_capture_on_commit_callbacks
):
    order, attempt = an_unpaid_sandbox_order()
    body, headers = registry.get_provider("sandbox").complete(attempt.attempt_bid, succeeded=True)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = deliver(body, headers)
    assert (outcome.http_status, outcome.code) == (200, "received")
    row = WebhookEvent.objects.get()
    assert row.status == InboxStatus.RECEIVED
    assert queued["apply"] == [row.pk]  # sent once the request's transaction committed
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID  # nothing applied in the request

    assert tasks.apply_webhook_event(row.pk) == "applied"
    order.refresh_from_db()
    row.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert (row.status, row.attempts) == (InboxStatus.APPLIED, 1)
    # A second run of the task (a redelivered message, the sweeper) changes nothing.
    assert tasks.apply_webhook_event(row.pk) == "duplicate"
    assert order.events.filter(to_status=OrderStatus.PAID).count() == 1
    assert queued["sync"] == []  # no follow-up for the sandbox


def test_the_task_is_sent_only_once_the_request_commits(
    sandbox_channel, queued, django_capture_on_commit_callbacks
):
    _, attempt = an_unpaid_sandbox_order()
    body, headers = registry.get_provider("sandbox").complete(attempt.attempt_bid, succeeded=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deliver(body, headers)
    assert len(callbacks) == 1 and queued["apply"] == []


def test_a_repeated_delivery_is_answered_from_one_look_up_and_writes_nothing(
    sandbox_channel, queued
):
    _, attempt = an_unpaid_sandbox_order()
    body, headers = registry.get_provider("sandbox").complete(attempt.attempt_bid, succeeded=True)
    deliver(body, headers)
    tasks.apply_webhook_event(WebhookEvent.objects.get().pk)
    with CaptureQueriesContext(connection) as queries:
        outcome = deliver(body, headers)
    assert (outcome.http_status, outcome.code) == (200, "duplicate")
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert queries[0]["sql"].lstrip().upper().startswith("SELECT")


def test_a_fresh_delivery_costs_a_look_up_and_an_insert(sandbox_channel, queued):
    _, attempt = an_unpaid_sandbox_order()
    body, headers = registry.get_provider("sandbox").complete(attempt.attempt_bid, succeeded=True)
    with CaptureQueriesContext(connection) as queries:
        deliver(body, headers)
    statements = [q["sql"].split()[0].upper() for q in queries]
    assert statements.count("SELECT") == 1 and statements.count("INSERT") == 1, statements


def test_a_repeat_of_an_unapplied_event_sends_nothing_more(
    sandbox_channel, queued, django_capture_on_commit_callbacks
):
    """A repeat (or a replay) of an event still to be applied is acknowledged, and its
    first task, its retries or the sweeper apply it: replays cannot fill the queue."""
    _, attempt = an_unpaid_sandbox_order()
    body, headers = registry.get_provider("sandbox").complete(attempt.attempt_bid, succeeded=True)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(body, headers)
        again = [deliver(body, headers) for _ in range(5)]
    assert {(o.http_status, o.code) for o in again} == {(200, "received")}
    assert queued["apply"] == [WebhookEvent.objects.get().pk]


def test_the_stripe_sync_has_a_queue_of_its_own():
    route = app.amqp.router.route({}, "payments.sync_stripe_event")
    assert route["queue"].name == "stripe_sync"
    assert app.amqp.router.route({}, "payments.apply_webhook_event")["queue"].name == "celery"


def run_as_worker(pk: int, *, retries: int):
    """The task's body as a worker runs it, on its ``retries``-th try."""
    task = tasks.apply_webhook_event
    task.push_request(retries=retries, is_eager=False, called_directly=False)
    try:
        return task.run(pk)
    finally:
        task.pop_request()


def test_an_event_that_cannot_be_applied_yet_is_retried_with_back_off(
    sandbox_channel, queued, settings, caplog, monkeypatch
):
    settings.WEBHOOK_APPLY_RETRIES = 3
    _, attempt = an_unpaid_sandbox_order()
    body, headers = registry.get_provider("sandbox").complete(attempt.attempt_bid, succeeded=True)
    deliver(body, headers)
    row = WebhookEvent.objects.get()
    # The event names an attempt of ours that is not recorded (yet).
    type(attempt).objects.filter(pk=attempt.pk).delete()
    retried = []

    def retry(**options):  # what Celery does: send the task again, later
        retried.append(options)
        return Retry()

    monkeypatch.setattr(tasks.apply_webhook_event, "retry", retry)
    for tries in range(3):
        with pytest.raises(Retry):
            run_as_worker(row.pk, retries=tries)
    assert [options["max_retries"] for options in retried] == [3, 3, 3]
    for tries, options in enumerate(retried):
        full = tasks.RETRY_BASE_SECONDS * 2**tries
        assert full // 2 <= options["countdown"] <= full

    # Out of tries: left failed in the inbox, for staff, with an error logged.
    assert run_as_worker(row.pk, retries=3) == "attempt_not_found"
    row.refresh_from_db()
    assert (row.status, row.attempts) == (InboxStatus.FAILED, 4)
    assert "left failed after 4 tries" in caplog.text


@pytest.mark.parametrize("retries", range(12))
def test_retry_delays_grow_exponentially_with_jitter_up_to_a_cap(retries):
    full = min(tasks.RETRY_MAX_SECONDS, tasks.RETRY_BASE_SECONDS * 2**retries)
    delays = {tasks.retry_delay(retries) for _ in range(50)}
    assert all(full // 2 <= delay <= full for delay in delays)
    assert tasks.RETRY_MAX_SECONDS < 3600  # under Redis's visibility timeout


def test_the_sweeper_sends_again_what_no_task_holds(queued, settings):
    settings.WEBHOOK_APPLY_RETRIES = 5
    now = timezone.now()
    old = now - timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS + 5)
    abandoned = now - timedelta(seconds=2 * tasks.RETRY_MAX_SECONDS + 5)
    lost = WebhookEventFactory(status=InboxStatus.RECEIVED)
    fresh = WebhookEventFactory(status=InboxStatus.RECEIVED)
    resent = WebhookEventFactory(status=InboxStatus.RECEIVED)  # sent again a moment ago
    ancient = WebhookEventFactory(status=InboxStatus.RECEIVED)  # for staff now
    failed = WebhookEventFactory(status=InboxStatus.FAILED, attempts=2)
    retrying = WebhookEventFactory(status=InboxStatus.FAILED, attempts=2)
    exhausted = WebhookEventFactory(status=InboxStatus.FAILED, attempts=5)
    applied = WebhookEventFactory(status=InboxStatus.APPLIED)
    WebhookEvent.objects.filter(pk__in=[lost.pk, applied.pk]).update(received_at=old)
    WebhookEvent.objects.filter(pk__in=[failed.pk, exhausted.pk]).update(processed_at=abandoned)
    WebhookEvent.objects.filter(pk=retrying.pk).update(processed_at=now)
    WebhookEvent.objects.filter(pk=fresh.pk).update(received_at=now)
    WebhookEvent.objects.filter(pk=resent.pk).update(received_at=old, processed_at=now)
    WebhookEvent.objects.filter(pk=ancient.pk).update(
        received_at=now - tasks.SWEEP_RECEIVED_FOR - timedelta(minutes=1)
    )

    assert tasks.sweep_webhook_inbox() == 2
    assert queued["apply"] == [lost.pk, failed.pk]
    # The next sweep, a minute later, does not send the same backlog again.
    assert tasks.sweep_webhook_inbox() == 0


def test_the_stripe_sync_is_rate_limited_and_its_rate_checked(settings):
    assert app.conf.task_annotations["payments.sync_stripe_event"]["rate_limit"] == "10/s"
    settings.CELERY_TASK_ANNOTATIONS = {"payments.sync_stripe_event": {"rate_limit": "fast"}}
    assert "config.E018" in {message.id for message in run_checks()}


def test_a_stored_event_that_no_longer_verifies_is_kept_failed_not_refused(
    sandbox_channel, queued, monkeypatch
):
    """Verified and answered 200 when it came, then unreadable in the worker (the key
    rotated meanwhile, say): failed, retried and listed for staff, never rejected."""
    from payments.providers.base import WebhookNotConfigured

    order, attempt = an_unpaid_sandbox_order()
    provider = registry.get_provider("sandbox")
    body, headers = provider.complete(attempt.attempt_bid, succeeded=True)
    deliver(body, headers)

    def unverifiable(self, body, headers):
        raise WebhookNotConfigured("no key", channel="sandbox")

    monkeypatch.setattr(type(provider), "parse_webhook", unverifiable)
    monkeypatch.setattr(tasks.apply_webhook_event, "retry", lambda **options: Retry())
    row = WebhookEvent.objects.get()
    with pytest.raises(Retry):
        run_as_worker(row.pk, retries=0)
    row.refresh_from_db()
    assert row.status == InboxStatus.FAILED
    assert row.last_error.startswith("webhook_not_configured")
    monkeypatch.undo()
    assert tasks.apply_webhook_event(row.pk) == "applied"  # once the key is back
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
