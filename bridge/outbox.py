"""Outbound events: written with the change they report, delivered after commit.

``event_write`` adds an event and one delivery per active endpoint to the caller's
transaction: an event exists if and only if its change was committed. ``deliveries_send``
is one pass over the deliveries due: each is claimed (SKIP LOCKED and a lease, so
several workers never send one twice at once), POSTed signed, and recorded. Events of
one subject (an order) go to an endpoint in the order they were written: a delivery
waits while an earlier one of its subject is pending there. A failed POST is retried
after PLATFORM_WEBHOOK_RETRY_BASE_SECONDS, doubling (at most an hour apart), until
PLATFORM_WEBHOOK_RETRY_HOURS have passed; then it is dead-lettered, listed in the admin.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from bridge import signing
from bridge.models import Delivery, DeliveryAttempt, DeliveryState, Endpoint, OutboundEvent
from payments_project.db import new_bid

logger = logging.getLogger(__name__)

SETTINGS_ENDPOINT = "PLATFORM_WEBHOOK_URL"
MAX_DELAY = timedelta(hours=1)
ANSWER_KEPT = 2000
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def url_allowed(url: str) -> bool:
    """``https://`` only, unless DEBUG is on or the host is loopback."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and (settings.DEBUG or parts.hostname in LOOPBACK)


def endpoints_active() -> list[Endpoint]:
    """The endpoints new events go to: PLATFORM_WEBHOOK_URL's row first (when set), then
    the active ones staff added in the admin. The settings' row is made once and never
    changed here (its URL and secret are read from the settings when POSTing), so that
    money transactions, which call this, write no configuration."""
    rows = list(
        Endpoint.objects.filter(
            Q(active=True, from_settings=False) | Q(name=SETTINGS_ENDPOINT)
        ).order_by("id")
    )
    ours = next((row for row in rows if row.name == SETTINGS_ENDPOINT), None)
    rows = [row for row in rows if row is not ours]
    if not settings.PLATFORM_WEBHOOK_URL:
        return rows
    if ours is None:
        try:
            with transaction.atomic():
                ours = Endpoint.objects.create(
                    name=SETTINGS_ENDPOINT,
                    url=settings.PLATFORM_WEBHOOK_URL[:500],
                    from_settings=True,
                )
        except IntegrityError:  # made meanwhile by a concurrent transaction
            ours = Endpoint.objects.get(name=SETTINGS_ENDPOINT)
    return [ours, *rows]


def _url(endpoint: Endpoint) -> str:
    return settings.PLATFORM_WEBHOOK_URL if endpoint.from_settings else endpoint.url


def event_body(event_id: str, type: str, created: int, data: dict[str, Any]) -> str:
    return json.dumps(
        {"id": event_id, "type": type, "created": created, "data": data},
        separators=(",", ":"),
        sort_keys=True,
        default=str,
    )


def event_write(*, type: str, subject: str, data: dict[str, Any]) -> OutboundEvent:
    """Write an event and its deliveries in the caller's transaction; they are sent
    once it commits."""
    now = timezone.now()
    event_id = f"evt_{new_bid()}"
    event = OutboundEvent.objects.create(
        event_id=event_id,
        type=type,
        subject=subject,
        body=event_body(event_id, type, int(now.timestamp()), data),
    )
    endpoints = endpoints_active()
    Delivery.objects.bulk_create(
        Delivery(event=event, endpoint=e, subject=subject, next_at=now, window_from=now)
        for e in endpoints
    )
    if endpoints:
        from bridge import tasks

        transaction.on_commit(lambda: tasks.deliver_events_soon([subject]))
    return event


def _secret(endpoint: Endpoint) -> str:
    return settings.PLATFORM_WEBHOOK_SECRET if endpoint.from_settings else endpoint.secret


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed POST: the base, doubling, at most an hour
    (the exponent is capped before it is raised: 2**40 seconds is no timedelta)."""
    base = settings.PLATFORM_WEBHOOK_RETRY_BASE_SECONDS
    seconds = base * 2 ** min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(seconds, MAX_DELAY.total_seconds()))


def deliveries_due(
    *,
    now=None,
    subjects: list[str] | None = None,
    limit: int = 100,
    healthy_only: bool = False,
):
    """The ids of the deliveries due, first in order of each subject. ``healthy_only``
    leaves out endpoints with a delivery waiting for a retry (failing now): what a web
    request sends after its commit, which must not wait for a receiver that is down."""
    now = now or timezone.now()
    earlier = Delivery.objects.filter(
        endpoint=OuterRef("endpoint"),
        subject=OuterRef("subject"),
        state=DeliveryState.PENDING,
        id__lt=OuterRef("id"),
    )
    due = Delivery.objects.filter(state=DeliveryState.PENDING, next_at__lte=now)
    if subjects is not None:
        due = due.filter(subject__in=subjects)
    if healthy_only:
        failing = Delivery.objects.filter(
            endpoint=OuterRef("endpoint"), state=DeliveryState.PENDING, attempts__gt=0
        )
        due = due.exclude(Exists(failing))
    return list(due.exclude(Exists(earlier)).order_by("id").values_list("id", flat=True)[:limit])


@dataclass
class SendReport:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0


def deliveries_send(
    *, subjects: list[str] | None = None, limit: int = 100, healthy_only: bool = False
) -> SendReport:
    """One pass over what is due (of ``subjects``, or all): claim, POST, record."""
    report = SendReport()
    session = _session()
    unreachable: set[int] = set()
    due = deliveries_due(subjects=subjects, limit=limit, healthy_only=healthy_only)
    for delivery in _claim(due):
        if delivery.endpoint_id in unreachable:
            # Its endpoint did not answer in this pass: not tried again now (a hanging
            # receiver would cost a timeout each); due again for the next pass.
            Delivery.objects.filter(pk=delivery.pk).update(next_at=timezone.now())
            continue
        report.sent += 1
        status, answer, ms = _post(session, delivery)
        if status is None:
            unreachable.add(delivery.endpoint_id)
        state = _record(delivery, status, answer, ms)
        if state == DeliveryState.DELIVERED:
            report.delivered += 1
        elif state == DeliveryState.DEAD:
            report.dead += 1
        else:
            report.failed += 1
    return report


def _claim(delivery_ids: list[int]) -> list[Delivery]:
    """Take due deliveries for one POST each: locked without waiting (another sender's
    are skipped), their due time moved past the POSTs' lease, committed. At most one per
    subject and endpoint is ever due at once, so the order per order holds."""
    if not delivery_ids:
        return []
    now = timezone.now()
    with transaction.atomic():
        # Only the delivery rows are locked (no join): the endpoint's row stays free for
        # the other senders.
        claimed = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(pk__in=delivery_ids, state=DeliveryState.PENDING, next_at__lte=now)
            .values_list("pk", flat=True)
        )
        # Long enough for every POST of the pass to take its longest (connecting, then
        # the status line, `timeout` each; see _post); a sender that dies leaves them
        # due again after it.
        per_post = 2 * settings.PLATFORM_WEBHOOK_TIMEOUT_SECONDS + 1
        lease = now + timedelta(seconds=per_post * len(claimed) + 30)
        Delivery.objects.filter(pk__in=claimed).update(next_at=lease)
    return list(
        Delivery.objects.select_related("event", "endpoint").filter(pk__in=claimed).order_by("id")
    )


@cache
def _session() -> requests.Session:
    """One HTTP session a process: connections to the endpoints are kept alive."""
    return requests.Session()


def _post(session: requests.Session, delivery: Delivery) -> tuple[int | None, str, int]:
    endpoint, event = delivery.endpoint, delivery.event
    started = time.monotonic()
    url = _url(endpoint)
    if not url:
        return None, "not sent: PLATFORM_WEBHOOK_URL is not set in this process", 0
    if not url_allowed(url):
        return None, f"not sent: {url} is not an https:// URL", 0
    body = event.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "payments-service/outbound-events",
        "X-Event-Id": event.event_id,
        "X-Event-Type": event.type,
        signing.HEADER: signing.signature(body, _secret(endpoint)),
    }
    limit = settings.PLATFORM_WEBHOOK_TIMEOUT_SECONDS
    try:
        # Streamed: the status decides; of the body, at most ANSWER_KEPT bytes are read,
        # and none once the time is up (a huge or trickling answer costs neither memory
        # nor a lease: connecting and the status line have `limit` each).
        with session.post(
            url, data=body, headers=headers, timeout=limit, allow_redirects=False, stream=True
        ) as answer:
            status, kept = answer.status_code, bytearray()
            for chunk in answer.iter_content(1024):
                kept += chunk
                if len(kept) >= ANSWER_KEPT or time.monotonic() > started + limit:
                    break
            text = bytes(kept[:ANSWER_KEPT]).decode(answer.encoding or "utf-8", errors="replace")
    except requests.RequestException as exc:
        status, text = None, f"{type(exc).__name__}: {exc}"[:ANSWER_KEPT]
    return status, text, int((time.monotonic() - started) * 1000)


def _record(delivery: Delivery, status: int | None, answer: str, ms: int) -> str:
    now = timezone.now()
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().get(pk=delivery.pk)
        DeliveryAttempt.objects.create(
            delivery=locked, status=status, answer=answer, duration_ms=ms
        )
        if locked.state != DeliveryState.PENDING:  # settled by staff meanwhile
            return locked.state
        if locked.attempts == 0:
            # Its retry window starts with its first POST: an event that waited behind an
            # earlier one of its order has its own three days.
            locked.window_from = now
        locked.attempts += 1
        locked.last_status = status
        if status is not None and 200 <= status < 300:
            locked.state = DeliveryState.DELIVERED
            locked.delivered_at = now
            locked.last_error = ""
        else:
            locked.last_error = answer if status is None else f"HTTP {status}: {answer}"
            retry_at = now + retry_delay(locked.attempts)
            window = timedelta(hours=settings.PLATFORM_WEBHOOK_RETRY_HOURS)
            if retry_at > locked.window_from + window:
                locked.state = DeliveryState.DEAD
                logger.error(
                    "event %s to %s dead-lettered after %s attempts: %s",
                    delivery.event.event_id,
                    delivery.endpoint.name,
                    locked.attempts,
                    locked.last_error[:200],
                )
            else:
                locked.next_at = retry_at
        locked.save()
        return locked.state


def deliveries_redeliver(deliveries) -> int:
    """Send these dead-lettered or delivered deliveries again now, with a new retry
    window (staff's action). Pending ones are left to their retries: one may be in
    flight right now."""
    now = timezone.now()
    return (
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries])
        .exclude(state=DeliveryState.PENDING)
        .update(
            state=DeliveryState.PENDING,
            next_at=now,
            window_from=now,
            delivered_at=None,
            attempts=0,
        )
    )


KEEP_DELIVERED = timedelta(days=30)


def events_prune(*, older_than: timedelta = KEEP_DELIVERED, batch: int = 1000) -> int:
    """Delete events older than ``older_than`` whose every delivery was delivered (or
    that had no endpoint), in batches; pending and dead-lettered ones stay for staff.
    How many were deleted."""
    cutoff = timezone.now() - older_than
    open_deliveries = Delivery.objects.filter(event=OuterRef("pk")).exclude(
        state=DeliveryState.DELIVERED
    )
    done = OutboundEvent.objects.filter(created_at__lt=cutoff).exclude(Exists(open_deliveries))
    deleted = 0
    while True:
        ids = list(done.order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return deleted
        with transaction.atomic():
            DeliveryAttempt.objects.filter(delivery__event_id__in=ids).delete()
            Delivery.objects.filter(event_id__in=ids).delete()
            deleted += (
                OutboundEvent.objects.filter(id__in=ids)
                .delete()[1]
                .get(OutboundEvent._meta.label, 0)
            )
