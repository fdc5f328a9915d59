"""Delivering outbound events in the task workers; beat sends what is due every
``DELIVER_EVERY`` seconds (retries), the commit of a change sends its events at once.

Without a broker (the embedded default) the events of a change are sent in-process
once it commits, and ``manage.py deliver_events`` (``--loop``) sends the retries.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

from bridge.outbox import deliveries_send, events_prune

logger = logging.getLogger(__name__)

DELIVER_EVERY = 10


@shared_task(
    name="bridge.deliver_events",
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def deliver_events(subjects: list[str] | None = None) -> dict:
    """One pass over the deliveries due (of ``subjects``, or all of them)."""
    report = deliveries_send(subjects=subjects)
    return report.__dict__


@shared_task(name="bridge.prune_outbound_events", ignore_result=True)
def prune_outbound_events() -> int:
    """Delete delivered events older than 30 days (beat, daily)."""
    return events_prune()


def deliver_events_soon(subjects: list[str]) -> None:
    """Send the events of ``subjects`` now: in a worker, or in-process without a broker.
    A failure here loses nothing: the deliveries stay due for the next pass."""
    if deliver_events.app.conf.task_always_eager:
        try:
            # In the request: never for an endpoint that is failing now (its retries
            # are `deliver_events --loop`'s), so a receiver that is down or hangs costs
            # the request at most one timeout.
            deliveries_send(subjects=subjects, healthy_only=True)
        except Exception:  # the change is committed; its events wait for the next pass
            logger.exception("outbound events of %s not sent now; left for the next pass", subjects)
        return
    try:
        deliver_events.delay(subjects)
    except Exception:  # broker down: beat's pass sends them once it is back
        logger.exception("outbound events of %s not queued; left for the next pass", subjects)
