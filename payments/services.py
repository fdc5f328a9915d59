"""The webhook inbox: every delivery is stored first, then applied in one transaction.

A delivery is answered 2xx only once it is safely stored and applied (or known to need
nothing). Deliveries repeat, arrive out of order and are sometimes forged:

- a forged or malformed delivery is stored as rejected (without an event id, so it can
  never take the place of the genuine event) and answered 4xx;
- a repeated event id is acknowledged and changes nothing;
- an event that cannot be applied yet (unknown charge, a refund before its payment) is
  kept as failed and answered 5xx, so the provider retries; reconciliation and the
  admin can apply it later;
- an amount, currency, app or mode other than expected is refused and recorded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.errors import (
    AmountMismatch,
    AttemptNotFound,
    EventConflict,
    NotApplicableYet,
    OrderNotFound,
)
from payments import registry
from payments.models import InboxStatus, SignatureStatus, WebhookEvent
from payments.providers.base import (
    EVENT_PAYMENT,
    EVENT_REFUND,
    ProviderEvent,
    WebhookPayloadInvalid,
    WebhookRejected,
)

logger = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 64 * 1024
# Request headers kept with a delivery; credentials and cookies never are.
KEPT_HEADERS = frozenset(
    {"content-type", "content-length", "user-agent", "x-forwarded-for", "x-request-id"}
)


@dataclass(frozen=True)
class WebhookOutcome:
    http_status: int
    code: str
    message: str
    event: WebhookEvent | None = None


def _headers_to_keep(headers: Mapping[str, str], channel_header: str = "") -> dict[str, str]:
    kept = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in KEPT_HEADERS or "signature" in lower:
            kept[lower] = value[:2000]
    return kept


def _reject(
    *, channel: str, body: bytes, headers: Mapping[str, str], remote_addr, error: WebhookRejected
) -> WebhookOutcome:
    verdict = error.details.get("signature", SignatureStatus.INVALID)
    if verdict not in SignatureStatus.values:
        verdict = SignatureStatus.INVALID
    row = WebhookEvent.objects.create(
        channel=channel,
        event_id=None,
        signature_status=verdict,
        status=InboxStatus.REJECTED,
        headers=_headers_to_keep(headers),
        body=body[:MAX_WEBHOOK_BODY].decode("utf-8", errors="replace"),
        remote_addr=remote_addr,
        last_error=f"{error.code}: {error.message}",
        processed_at=timezone.now(),
    )
    logger.warning(
        "webhook rejected: %s",
        error.code,
        extra={"channel": channel, "code": error.code, "signature": verdict, "inbox_id": row.pk},
    )
    return WebhookOutcome(error.http_status, error.code, error.message, row)


def webhook_receive(
    *,
    channel: str,
    body: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None = None,
) -> WebhookOutcome:
    """Verify, store, then apply one delivery; the outcome says what to answer."""
    provider = registry.get_provider_any(channel)
    if len(body) > MAX_WEBHOOK_BODY:
        error = WebhookPayloadInvalid(
            f"Body of {len(body)} bytes is over the limit of {MAX_WEBHOOK_BODY}.",
            channel=channel,
            signature=SignatureStatus.MISSING,
            code="webhook_body_too_large",
        )
        error.http_status = 413
        return _reject(
            channel=channel, body=b"", headers=headers, remote_addr=remote_addr, error=error
        )
    try:
        event = provider.parse_webhook(body, headers)
        _check_event_matches_configuration(provider, event)
    except WebhookRejected as exc:
        return _reject(
            channel=channel, body=body, headers=headers, remote_addr=remote_addr, error=exc
        )

    return _store_and_apply(
        channel=channel,
        event=event,
        body=body.decode("utf-8", errors="replace"),
        headers=_headers_to_keep(headers),
        remote_addr=remote_addr,
    )


def verified_event_receive(*, channel: str, event: ProviderEvent, body: str) -> WebhookOutcome:
    """Store and apply an event whose delivery was verified elsewhere (dj-stripe)."""
    try:
        _check_event_matches_configuration(registry.get_provider_any(channel), event)
    except WebhookRejected as exc:
        return verified_event_rejected(channel=channel, body=body, error=exc)
    return _store_and_apply(channel=channel, event=event, body=body, headers={}, remote_addr=None)


def verified_event_rejected(*, channel: str, body: str, error: WebhookRejected) -> WebhookOutcome:
    """Record a verified event that cannot be read as one of ours: a retry would not help."""
    return _reject(channel=channel, body=body.encode(), headers={}, remote_addr=None, error=error)


def verified_event_failed(
    *, channel: str, event: ProviderEvent, body: str, error: str
) -> WebhookEvent:
    """Keep a verified event whose application failed, for a retry or reconciliation.

    For deliveries whose own transaction was rolled back (dj-stripe's): the row is
    written afresh, or the existing one marked failed.
    """
    subject = event.payment or event.refund
    row, created = WebhookEvent.objects.get_or_create(
        channel=channel,
        event_id=event.event_id,
        defaults={
            "event_type": event.event_type[:100],
            "signature_status": SignatureStatus.VALID,
            "status": InboxStatus.FAILED,
            "livemode": event.livemode,
            "order_bid": (getattr(subject, "order_bid", "") or "")[:36],
            "body": body,
            "payload": dict(event.raw),
            "attempts": 1,
            "last_error": error[:5000],
            "processed_at": timezone.now(),
        },
    )
    if not created and row.status in (InboxStatus.RECEIVED, InboxStatus.FAILED):
        WebhookEvent.objects.filter(pk=row.pk).update(
            status=InboxStatus.FAILED, last_error=error[:5000], processed_at=timezone.now()
        )
    return row


def _store_and_apply(
    *, channel: str, event: ProviderEvent, body: str, headers: dict, remote_addr
) -> WebhookOutcome:
    subject = event.payment or event.refund
    logger.info(
        "webhook received: %s",
        event.event_type,
        extra={
            "channel": channel,
            "event_id": event.event_id,
            "order_bid": getattr(subject, "order_bid", "") or "",
            "attempt_bid": getattr(subject, "attempt_bid", "") or "",
            "refund_bid": getattr(subject, "refund_bid", "") or "",
        },
    )
    try:
        with transaction.atomic():
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
                payload=dict(event.raw),
                remote_addr=remote_addr,
            )
    except IntegrityError:
        row = WebhookEvent.objects.get(channel=channel, event_id=event.event_id)
        if row.status in (InboxStatus.APPLIED, InboxStatus.IGNORED, InboxStatus.REJECTED):
            return WebhookOutcome(200, "duplicate", "Already received.", row)
    return inbox_apply(row=row, event=event)


def _check_event_matches_configuration(provider, event: ProviderEvent) -> None:
    """Refuse an event from another app or another mode than this service's."""
    expected_mode = getattr(provider, "livemode", None)
    if expected_mode is not None and event.livemode is not None and event.livemode != expected_mode:
        raise WebhookRejected(
            f"A {'live' if event.livemode else 'test'} event reached a "
            f"{'live' if expected_mode else 'test'} configuration.",
            channel=provider.channel,
            code="webhook_livemode_mismatch",
            signature=SignatureStatus.VALID,
        )
    expected_app = getattr(provider, "app_id", "") or ""
    app_id = event.payment.app_id if event.payment else ""
    if expected_app and app_id and app_id != expected_app:
        raise WebhookRejected(
            f"The event is for app {app_id}, not {expected_app}.",
            channel=provider.channel,
            code="webhook_app_mismatch",
            signature=SignatureStatus.VALID,
        )


def inbox_apply(*, row: WebhookEvent, event: ProviderEvent | None = None) -> WebhookOutcome:
    """Apply a stored event, once: concurrent deliveries wait on the row's lock."""
    from orders.services import payment_apply, refund_apply

    channel = row.channel
    provider = registry.get_provider_any(channel)
    if event is None:
        # A stored event is parsed again; one verified elsewhere (dj-stripe) is read
        # from what was stored, without its signature.
        from_payload = getattr(provider, "event_from_payload", None)
        if from_payload is not None and not row.headers:
            event = from_payload(json.loads(row.body))
        else:
            event = provider.parse_webhook(row.body.encode(), row.headers)
    source = f"{channel}:{row.event_id}"
    with transaction.atomic():
        row = WebhookEvent.objects.select_for_update().get(pk=row.pk)
        if row.status in (InboxStatus.APPLIED, InboxStatus.IGNORED):
            return WebhookOutcome(200, "duplicate", "Already applied.", row)
        row.attempts += 1
        row.processed_at = timezone.now()
        try:
            if event.kind == EVENT_PAYMENT and event.payment is not None:
                order = payment_apply(channel=channel, state=event.payment, source=source)
                row.order_bid = order.order_bid
                row.status = InboxStatus.APPLIED
            elif event.kind == EVENT_REFUND and event.refund is not None:
                refund = refund_apply(channel=channel, state=event.refund, source=source)
                if refund is None:
                    row.status = InboxStatus.IGNORED
                else:
                    row.order_bid = refund.order.order_bid
                    row.status = InboxStatus.APPLIED
            else:
                row.status = InboxStatus.IGNORED
            row.last_error = ""
            outcome = (200, "applied" if row.status == InboxStatus.APPLIED else "ignored", "")
        except AttemptNotFound as exc:
            subject = event.payment or event.refund
            row.last_error = f"{exc.code}: {exc.message}"
            if getattr(subject, "attempt_bid", "") or getattr(subject, "refund_bid", ""):
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
        except (AmountMismatch, OrderNotFound) as exc:
            row.status = InboxStatus.REJECTED
            row.last_error = f"{exc.code}: {exc.message}"
            outcome = (400, exc.code, exc.message)
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
        row.save(update_fields=["status", "last_error", "attempts", "processed_at", "order_bid"])
    status, code, message = outcome
    subject = event.payment or event.refund
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
