"""The webhook inbox: every delivery is stored first, then applied in one transaction.

A verified delivery is stored and answered 2xx in its request; applying it is a task
(``payments.apply_webhook_event``) that a worker runs once the request's transaction
commits, retrying with back-off what cannot be applied yet. Without a broker (the
embedded default) it is applied in the request instead, and the answer says what
applying did, so that the provider's own retries stand in for the missing worker.
Deliveries repeat, arrive out of order and are sometimes forged:

- a forged or malformed delivery is stored as rejected (without an event id, so it can
  never take the place of the genuine event) and answered 4xx; only its size, digest and
  first 2 KiB are kept, and its repeats count on one row, so forgeries cannot fill the
  database; a body over ``WEBHOOK_MAX_BODY_BYTES`` is refused (413) without being read;
- a repeated event id is acknowledged from one indexed look-up and changes nothing;
- an event that cannot be applied yet (unknown charge, a refund before its payment) is
  kept as failed and retried; the admin can apply it again;
- an amount, currency, app or mode other than expected is refused and recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from payments import registry
from payments.credentials import CredentialsLocked
from payments.errors import (
    AmountMismatch,
    AttemptNotFound,
    EventConflict,
    IntegrationMismatch,
    NotApplicableYet,
    OrderNotFound,
)
from payments.inbox_upkeep import REAPPLICABLE
from payments.integrations import IntegrationUnavailable
from payments.models import InboxStatus, SignatureStatus, WebhookEvent
from payments.providers.base import (
    EVENT_PAYMENT,
    EVENT_REFUND,
    ProviderEvent,
    WebhookPayloadInvalid,
    WebhookRejected,
)
from payments.sink import sink
from payments_project.errors import InvalidInput

logger = logging.getLogger(__name__)

# Request headers kept with a delivery; credentials and cookies never are.
KEPT_HEADERS = frozenset(
    {"content-type", "content-length", "user-agent", "x-forwarded-for", "x-request-id"}
)
# What a rejected delivery keeps of its body (bytes), and of its kept headers (characters
# of names and values: a forgery may carry many "signature" headers).
REJECTED_BODY_KEPT = 2 * 1024
REJECTED_HEADERS_KEPT = 4 * 1024
# The largest size a row records (a declared Content-Length can say anything).
MAX_RECORDED_BYTES = 2**31 - 1


@dataclass(frozen=True)
class WebhookOutcome:
    http_status: int
    code: str
    message: str
    event: WebhookEvent | None = None
    # Stored, still to be applied: the caller has it applied (payments.tasks).
    pending: bool = False
    # Stored by this delivery (not a repeat): its task is still to be sent.
    stored_now: bool = False


def _headers_to_keep(headers: Mapping[str, str], channel_header: str = "") -> dict[str, str]:
    kept = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in KEPT_HEADERS or "signature" in lower:
            kept[lower] = value[:2000]
    return kept


def _body_prefix(body: bytes, limit: int) -> str:
    """The body's first ``limit`` bytes as text of at most ``limit`` bytes of UTF-8
    (undecodable bytes are replaced, which could otherwise make it longer)."""
    text = body[:limit].decode("utf-8", errors="replace")
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _within(headers: dict[str, str], budget: int) -> dict[str, str]:
    """The headers that fit in ``budget`` characters of names and values, in order."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        cost = len(name) + len(value)
        if cost <= budget:
            kept[name] = value
            budget -= cost
    return kept


def _reject(
    *,
    channel: str,
    body: bytes,
    headers: Mapping[str, str],
    remote_addr,
    error: WebhookRejected,
    unread_bytes: int | None = None,
    keep_body: bool = True,
) -> WebhookOutcome:
    """Record a refused delivery: its kept headers, size, digest and first 2 KiB.

    The same refusal (error code and signature verdict) of the same body on the same
    channel again counts one more repeat on the first one's row. A body refused unread
    (``unread_bytes``, its declared size) has an empty digest: all of those count on one
    row per channel.
    """
    verdict = error.details.get("signature", SignatureStatus.INVALID)
    if verdict not in SignatureStatus.values:
        verdict = SignatureStatus.INVALID
    now = timezone.now()
    key = {
        "channel": channel,
        "digest": "" if unread_bytes is not None else hashlib.sha256(body).hexdigest(),
        "rejection_code": error.code[:64],
        "signature_status": verdict,
    }
    fields = {
        "event_id": None,
        "status": InboxStatus.REJECTED,
        "headers": _within(_headers_to_keep(headers), REJECTED_HEADERS_KEPT),
        "body": (
            _body_prefix(body, REJECTED_BODY_KEPT) if keep_body and unread_bytes is None else ""
        ),
        "body_bytes": unread_bytes if unread_bytes is not None else len(body),
        "remote_addr": remote_addr,
        "last_error": f"{error.code}: {error.message}"[:1000],
        "processed_at": now,
        "last_seen_at": now,
    }
    row, created = _rejection_counted(key=key, fields=fields, now=now)
    logger.warning(
        "webhook rejected: %s",
        error.code,
        extra={
            "channel": channel,
            "code": error.code,
            "signature": verdict,
            "inbox_id": row.pk,
            "repeat": not created,
        },
    )
    return WebhookOutcome(error.http_status, error.code, error.message, row)


def _rejections_over_budget(key: dict, now: datetime) -> bool:
    """Whether a new body may no longer get a detailed row: this hour's detailed rows of
    refused deliveries on the channel are all spent."""
    if not key["digest"] or key["digest"].startswith("overflow:"):
        return False  # unread bodies and the overflow row are counted anyway
    budget = settings.WEBHOOK_REJECTED_ROWS_PER_HOUR
    recent = WebhookEvent.objects.filter(
        status=InboxStatus.REJECTED,
        received_at__gte=now - timedelta(hours=1),
        channel=key["channel"],
    )
    return recent[:budget].count() >= budget


def _rejection_counted(*, key: dict, fields: dict, now: datetime) -> tuple[WebhookEvent, bool]:
    """The rejection's row, created, or counted once more if it exists; when concurrent
    deliveries race to create it, the unique index on ``key`` picks one row.

    A body already recorded is counted on its own row. A new one, in a flood of
    different bodies (forgeries, a scanner) past the hour's budget of detailed rows, is
    only counted, on one row per hour, refusal and verdict, without its headers or body.
    """
    tries = 3
    for attempt in range(tries):
        row = WebhookEvent.objects.filter(**key).first()
        if row is None and _rejections_over_budget(key, now):
            key = {**key, "digest": f"overflow:{now:%Y-%m-%dT%H}"}
            fields = {
                **fields,
                "headers": {},
                "body": "",
                "last_error": f"{key['rejection_code']}: more than "
                "WEBHOOK_REJECTED_ROWS_PER_HOUR refused deliveries this hour; counted "
                "here without their bodies",
            }
            row = WebhookEvent.objects.filter(**key).first()
        if row is None:
            try:
                with transaction.atomic():
                    return WebhookEvent.objects.create(**key, **fields), True
            except IntegrityError:
                # A concurrent delivery of the same body made it first: count on it.
                if attempt == tries - 1:
                    raise
                continue
        counted = WebhookEvent.objects.filter(pk=row.pk).update(
            repeats=F("repeats") + 1, last_seen_at=now
        )
        if counted:
            row.repeats += 1
            row.last_seen_at = now
            return row, False
        # Pruned between the two statements: make it again.
    raise RuntimeError(f"The rejected delivery could not be recorded: {key}.")


def webhook_refuse_too_large(
    *,
    channel: str,
    body_bytes: int,
    headers: Mapping[str, str],
    remote_addr: str | None = None,
) -> WebhookOutcome:
    """Refuse (413) and record a delivery whose body is over the limit, from its size alone."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    error = WebhookPayloadInvalid(
        f"Body of {body_bytes} bytes is over the limit of {limit}.",
        channel=channel,
        signature=SignatureStatus.MISSING,
        code="webhook_body_too_large",
    )
    error.http_status = 413
    return _reject(
        channel=channel,
        body=b"",
        headers=headers,
        remote_addr=remote_addr,
        error=error,
        unread_bytes=min(body_bytes, MAX_RECORDED_BYTES),
    )


def webhook_receive(
    *,
    channel: str,
    body: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None = None,
    integration_bid: str = "",
) -> WebhookOutcome:
    """Verify and store one delivery. The outcome says what to answer, or, ``pending``,
    that the stored event is still to be applied (``payments.tasks.webhook_dispatch``).

    ``integration_bid``: the creator's merchant account the delivery's URL names, whose
    keys verify it ("" the platform's); the event may then settle only payments that
    account took."""
    try:
        provider = registry.provider_of(channel, integration_bid)
    except (IntegrationUnavailable, CredentialsLocked) as exc:
        unknown = WebhookRejected(
            exc.message,
            channel=channel,
            signature=SignatureStatus.MISSING,
            code="webhook_integration_unknown",
        )
        unknown.http_status = 404 if isinstance(exc, IntegrationUnavailable) else 503
        return _reject(
            channel=channel, body=body, headers=headers, remote_addr=remote_addr, error=unknown
        )
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return webhook_refuse_too_large(
            channel=channel, body_bytes=len(body), headers=headers, remote_addr=remote_addr
        )
    try:
        event = provider.parse_webhook(body, headers)
        _check_event_matches_configuration(provider, event)
    except WebhookRejected as exc:
        signed = exc.details.get("signature") == SignatureStatus.VALID
        refused = _reject(
            channel=channel,
            body=body,
            headers=headers,
            remote_addr=remote_addr,
            error=exc,
            # A signed body of a channel that never keeps one whole may hold what must
            # never be stored (a PaymentIntent's client_secret): its digest and size only.
            keep_body=not signed or provider.signature_kept,
        )
        if signed and provider.refusal_acknowledged:
            return WebhookOutcome(200, exc.code, exc.message, refused.event)
        return refused
    if integration_bid:
        # Each account's events are its own: one account cannot take another's event id
        # first and have the genuine delivery answered as a duplicate.
        event = replace(event, event_id=f"{event.event_id}@{integration_bid}")
    # A channel verified from its kept signature keeps the body as it came; another
    # keeps the event as parsed (without what must never be stored).
    kept = (
        body.decode("utf-8", errors="replace")
        if provider.signature_kept
        else json.dumps(event.raw, sort_keys=True)
    )
    return _store(
        channel=channel,
        event=event,
        body=kept,
        body_bytes=len(body),
        headers=_headers_to_keep(headers),
        remote_addr=remote_addr,
        integration_bid=integration_bid,
    )


def verified_event_receive(*, channel: str, event: ProviderEvent, body: str) -> WebhookOutcome:
    """Store and apply, here, an event whose delivery was verified elsewhere."""
    try:
        _check_event_matches_configuration(registry.get_provider_any(channel), event)
    except WebhookRejected as exc:
        return verified_event_rejected(channel=channel, body=body, error=exc)
    outcome = _store(
        channel=channel,
        event=event,
        body=body,
        body_bytes=len(body.encode()),
        headers={},
        remote_addr=None,
    )
    return inbox_apply(row=outcome.event, event=event) if outcome.pending else outcome


def verified_event_rejected(*, channel: str, body: str, error: WebhookRejected) -> WebhookOutcome:
    """Record a verified event that cannot be read as one of ours: a retry would not help."""
    return _reject(channel=channel, body=body.encode(), headers={}, remote_addr=None, error=error)


def _stored(channel: str, event_id: str) -> WebhookEvent | None:
    """The inbox row of an event, from one indexed look-up of three columns (never the
    body), or None."""
    found = (
        WebhookEvent.objects.filter(channel=channel, event_id=event_id)
        .values_list("pk", "status", "order_bid")
        .first()
    )
    if found is None:
        return None
    pk, status, order_bid = found
    return WebhookEvent(
        pk=pk, channel=channel, event_id=event_id, status=status, order_bid=order_bid
    )


def _store(
    *,
    channel: str,
    event: ProviderEvent,
    body: str,
    body_bytes: int,
    headers: dict,
    remote_addr,
    integration_bid: str = "",
) -> WebhookOutcome:
    """The event's inbox row, stored once per event id: a repeat is found by one
    indexed look-up and writes nothing. Pending when the row is still to be applied."""
    row = _stored(channel, event.event_id)
    if row is None:
        subject = event.payment or event.refund
        # One INSERT is atomic on its own: a transaction (BEGIN, COMMIT, and MySQL's
        # autocommit switched off and on) is needed only inside a caller's, to survive
        # the duplicate key a concurrent delivery may cause.
        inside = transaction.get_connection().in_atomic_block
        try:
            with transaction.atomic() if inside else contextlib.nullcontext():
                row = WebhookEvent.objects.create(
                    channel=channel,
                    event_id=event.event_id,
                    event_type=event.event_type[:100],
                    signature_status=SignatureStatus.VALID,
                    status=InboxStatus.RECEIVED,
                    livemode=event.livemode,
                    order_bid=(getattr(subject, "order_bid", "") or "")[:36],
                    object_id=(
                        getattr(subject, "provider_payment_id", "")
                        if event.kind == EVENT_PAYMENT
                        else getattr(subject, "provider_refund_id", "")
                    )[:255],
                    headers=headers,
                    body=body,
                    body_bytes=body_bytes,
                    payload=dict(event.raw),
                    remote_addr=remote_addr,
                    integration_bid=integration_bid,
                )
        except IntegrityError:  # a concurrent delivery of the same event stored it first
            row = _stored(channel, event.event_id)
        else:
            # Debug: the access log has the request and the worker logs what applying did.
            logger.debug(
                "webhook stored: %s",
                event.event_type,
                extra={
                    "channel": channel,
                    "event_id": event.event_id,
                    "inbox_id": row.pk,
                    "order_bid": row.order_bid,
                    "attempt_bid": getattr(subject, "attempt_bid", "") or "",
                    "refund_bid": getattr(subject, "refund_bid", "") or "",
                },
            )
            return WebhookOutcome(200, "received", "Stored.", row, pending=True, stored_now=True)
    if row.status in REAPPLICABLE:
        return WebhookOutcome(200, "received", "Stored earlier.", row, pending=True)
    return WebhookOutcome(200, "duplicate", "Already received.", row)


def _check_event_matches_configuration(provider, event: ProviderEvent) -> None:
    """Refuse an event from another app or another mode than this service's."""
    expected_mode = provider.livemode
    if expected_mode is not None and event.livemode is not None and event.livemode != expected_mode:
        raise WebhookRejected(
            f"A {'live' if event.livemode else 'test'} event reached a "
            f"{'live' if expected_mode else 'test'} configuration.",
            channel=provider.channel,
            code="webhook_livemode_mismatch",
            signature=SignatureStatus.VALID,
        )
    expected_app = provider.app_id
    app_id = event.payment.app_id if event.payment else ""
    if expected_app and app_id and app_id != expected_app:
        raise WebhookRejected(
            f"The event is for app {app_id}, not {expected_app}.",
            channel=provider.channel,
            code="webhook_app_mismatch",
            signature=SignatureStatus.VALID,
        )


def stored_event(row: WebhookEvent) -> ProviderEvent:
    """A stored event, parsed again: verified again from its kept signature, or, for a
    channel verified upstream (Stripe, by dj-stripe), read from its stored payload. A
    row of a signing channel stored without its signature is refused, never trusted."""
    provider = registry.provider_of(row.channel, row.integration_bid)
    if provider.signature_kept:
        return provider.parse_webhook(row.body.encode(), row.headers)
    try:
        payload = json.loads(row.body)
    except ValueError:
        raise WebhookPayloadInvalid(
            f"Stored event {row.event_id} is not JSON.", channel=row.channel, signature="valid"
        ) from None
    return provider.event_from_payload(payload)


def inbox_apply_stored(pk: int) -> WebhookOutcome | None:
    """Apply the stored event ``pk`` (the task's work); None if it is gone (pruned)."""
    try:
        return inbox_apply(row=WebhookEvent(pk=pk))
    except WebhookEvent.DoesNotExist:
        return None


def inbox_apply(*, row: WebhookEvent, event: ProviderEvent | None = None) -> WebhookOutcome:
    """Apply a stored event, once, through the payment event sink: concurrent runs wait
    on the row's lock, and one that finds it settled changes nothing. Only ``row.pk``
    is read: the row is read again under its lock."""
    with transaction.atomic():
        row = WebhookEvent.objects.select_for_update().get(pk=row.pk)
        channel = row.channel
        source = f"{channel}:{row.event_id}"
        if row.status not in REAPPLICABLE:
            return WebhookOutcome(200, "duplicate", f"Already {row.status}.", row)
        row.attempts += 1
        row.processed_at = timezone.now()
        try:
            if event is None:
                event = stored_event(row)
            if event.kind == EVENT_PAYMENT and event.payment is not None:
                reported = sink().payment_reported(
                    channel=channel,
                    state=event.payment,
                    source=source,
                    integration_bid=row.integration_bid,
                )
                row.order_bid = reported.order_bid
                row.status = InboxStatus.APPLIED
                row.result = reported.result[:500]
            elif event.kind == EVENT_REFUND and event.refund is not None:
                reported = sink().refund_reported(
                    channel=channel,
                    state=event.refund,
                    source=source,
                    integration_bid=row.integration_bid,
                )
                if reported is None:
                    row.status = InboxStatus.IGNORED
                    row.result = "a refund made at the provider that failed: nothing to record"
                else:
                    row.order_bid = reported.order_bid
                    row.status = InboxStatus.APPLIED
                    row.result = reported.result[:500]
            else:
                row.status = InboxStatus.IGNORED
            row.last_error = ""
            outcome = (200, "applied" if row.status == InboxStatus.APPLIED else "ignored", "")
        except AttemptNotFound as exc:
            subject = event.payment or event.refund
            row.last_error = f"{exc.code}: {exc.message}"
            if exc.details.get("another_domain"):
                # The platform's creator billing's, on the same account or app.
                row.status = InboxStatus.IGNORED
                outcome = (200, "not_ours", exc.message)
            elif getattr(subject, "attempt_bid", "") or getattr(subject, "refund_bid", ""):
                # Ours (it names an attempt or refund of ours) but not recorded yet: retry.
                row.status = InboxStatus.FAILED
                outcome = (503, exc.code, exc.message)
            else:
                # Names nothing of ours: another integration's, on a shared account.
                row.status = InboxStatus.IGNORED
                outcome = (200, "not_ours", exc.message)
        except NotApplicableYet as exc:
            row.status = InboxStatus.FAILED
            row.last_error = f"{exc.code}: {exc.message}"
            outcome = (503, exc.code, exc.message)
        except (AmountMismatch, IntegrationMismatch, OrderNotFound) as exc:
            row.status = InboxStatus.REJECTED
            row.last_error = f"{exc.code}: {exc.message}"
            outcome = (400, exc.code, exc.message)
        except WebhookRejected as exc:
            # Verified when it was stored, but not readable now (the verification key
            # removed or rotated meanwhile, say): kept failed, retried and listed for
            # staff; never refused for good after the provider was told 200.
            row.status = InboxStatus.FAILED
            row.last_error = f"{exc.code}: {exc.message}"
            outcome = (503, exc.code, exc.message)
        except EventConflict as exc:
            # Recorded for support; the provider need not send it again.
            row.status = InboxStatus.REJECTED
            row.last_error = f"{exc.code}: {exc.message}"
            outcome = (200, exc.code, exc.message)
        except Exception as exc:
            logger.exception(
                "webhook apply failed",
                extra={"channel": channel, "event_id": row.event_id, "order_bid": row.order_bid},
            )
            row.status = InboxStatus.FAILED
            row.last_error = f"{type(exc).__name__}: {exc}"[:5000]
            outcome = (500, "apply_failed", "The event is stored and will be retried.")
        row.save(
            update_fields=[
                "status",
                "last_error",
                "attempts",
                "processed_at",
                "order_bid",
                "result",
            ]
        )
    status, code, message = outcome
    subject = (event.payment or event.refund) if event is not None else None
    logger.log(
        logging.INFO if status < 400 else logging.WARNING,
        "webhook %s: %s",
        row.status,
        code,
        extra={
            "channel": channel,
            "event_id": row.event_id,
            "order_bid": row.order_bid,
            "attempt_bid": getattr(subject, "attempt_bid", "") or "",
            "refund_bid": getattr(subject, "refund_bid", "") or "",
            "http_status": status,
        },
    )
    return WebhookOutcome(status, code, message or row.status, row)


def inbox_event_reapply(*, row: WebhookEvent, actor: Any) -> WebhookOutcome:
    """Staff apply a stored webhook event again (one received or failed); the order's
    history says who did it (through the sink)."""
    if row.status not in REAPPLICABLE:
        raise InvalidInput(
            f"Event {row.event_id} is {row.status}; only received or failed events are "
            "applied again.",
            code="event_not_reapplicable",
        )
    message = f"webhook event {row.channel}:{row.event_id} applied again"
    if row.order_bid:
        sink().staff_note(order_bid=row.order_bid, actor=actor, message=message)
    outcome = inbox_apply(row=row)
    applied = outcome.event or row
    if not row.order_bid and applied.order_bid:
        sink().staff_note(order_bid=applied.order_bid, actor=actor, message=message)
    return outcome


# The inbox's upkeep (the sweeper's and the pruning's queries), in a module of its own.
from payments.inbox_upkeep import (  # noqa: E402, F401
    PRUNABLE_STATUSES,
    webhook_events_count,
    webhook_events_due,
    webhook_events_prunable,
    webhook_events_prune,
)
