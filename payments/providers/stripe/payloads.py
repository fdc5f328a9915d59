"""Stripe objects (PaymentIntents, Checkout Sessions, refunds) as PaymentState and
RefundState. Plain JSON in: the SDK's objects are made plain by ``api`` first."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    PaymentState,
    RefundState,
)
from payments.providers.payloads import (
    Malformed,
    currency,
    identifier,
    integer,
    livemode,
    metadata,
    text,
    timestamp,
)

logger = logging.getLogger("payments.providers.stripe")

CHANNEL = "stripe"

PI_STATUSES = frozenset(
    {
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
        "canceled",
        "succeeded",
    }
)
# The PaymentIntent statuses Stripe lets be cancelled. It allows processing too, "in rare
# cases": not tried, that payment may be on its way.
PI_CANCELLABLE = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)
SESSION_PAID = frozenset({"paid", "no_payment_required"})
REFUND_STATUSES = {
    "pending": REFUND_PENDING,
    "requires_action": REFUND_PENDING,
    "succeeded": REFUND_SUCCEEDED,
    "failed": REFUND_FAILED,
    "canceled": REFUND_FAILED,
}


def id_of(value: Any) -> str:
    """The id of an expandable field: the id itself, or the expanded object's id."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return value["id"]
    return ""


def expanded(value: Any, kind: str) -> Mapping[str, Any] | None:
    """An expandable field's object, when it was expanded and is a ``kind``."""
    return value if isinstance(value, Mapping) and value.get("object") == kind else None


def _failure(intent: Mapping[str, Any] | None) -> tuple[str, str]:
    """(code, message) of a PaymentIntent's last payment error; the decline code first."""
    error = (intent or {}).get("last_payment_error")
    if not isinstance(error, Mapping):
        return "", ""
    code = text(error, "decline_code") or text(error, "code") or text(error, "type")
    return code, text(error, "message")


def payment_intent_state(intent: Mapping[str, Any], *, state: str = "") -> PaymentState:
    """The normalised state of a PaymentIntent (``state`` given: an event's verdict)."""
    intent_id = identifier(intent, "payment_intent")
    status = text(intent, "status")
    if not status:
        raise Malformed("payment_intent has no status")
    failure_code, failure_message = _failure(intent)
    if not state:
        if status == "succeeded":
            state = PAYMENT_SUCCEEDED
        elif status == "canceled":
            state = PAYMENT_CLOSED
        elif status == "requires_payment_method" and (failure_code or failure_message):
            state = PAYMENT_FAILED
        else:
            state = PAYMENT_PENDING
    amount = integer(intent, "amount")
    charge = expanded(intent.get("latest_charge"), "charge")
    if state == PAYMENT_SUCCEEDED:
        if status != "succeeded":
            raise Malformed(f"payment_intent {intent_id} is {status}, not succeeded")
        # What was received: amount_received, or on servers that predate it
        # (localstripe), the amount of the succeeded charge; never the amount asked.
        if "amount_received" in intent or charge is None:
            amount = integer(intent, "amount_received")
        else:
            amount = integer(charge, "amount_captured" if "amount_captured" in charge else "amount")
    fields = metadata(intent)
    return PaymentState(
        provider_payment_id=intent_id,
        state=state,
        amount=amount,
        currency=currency(intent),
        attempt_bid=str(fields.get("attempt_bid") or ""),
        order_bid=str(fields.get("order_bid") or ""),
        livemode=livemode(intent),
        paid_at=timestamp(charge, "created") if state == PAYMENT_SUCCEEDED else None,
        transaction_no=id_of(intent.get("latest_charge")),
        failure_code=failure_code,
        failure_message=failure_message,
        raw=dict(intent),
    )


def checkout_session_state(session: Mapping[str, Any], *, state: str = "") -> PaymentState:
    """The normalised state of a Checkout Session (``state`` given: an event's verdict).

    With its PaymentIntent expanded, a completed but unpaid session whose payment
    failed (an asynchronous method) is failed rather than pending.
    """
    session_id = identifier(session, "checkout.session")
    status = text(session, "status")
    payment_status = text(session, "payment_status")
    if not status or not payment_status:
        raise Malformed("checkout.session has no status or payment_status")
    intent = expanded(session.get("payment_intent"), "payment_intent")
    intent_state = payment_intent_state(intent) if intent is not None else None
    paid = status == "complete" and payment_status in SESSION_PAID
    if not state:
        if paid:
            state = PAYMENT_SUCCEEDED
        elif status == "expired":
            state = PAYMENT_CLOSED
        elif intent_state is not None and intent_state.state == PAYMENT_FAILED:
            state = PAYMENT_FAILED
        else:
            state = PAYMENT_PENDING
    if state == PAYMENT_SUCCEEDED and not paid:
        raise Malformed(f"checkout.session {session_id} is {status}/{payment_status}, not paid")
    failure_code, failure_message = _failure(intent)
    if state == PAYMENT_FAILED and not failure_code:
        failure_code = "async_payment_failed"
        failure_message = failure_message or "The payment of the Checkout Session failed."
    fields = metadata(session)
    return PaymentState(
        provider_payment_id=session_id,
        state=state,
        amount=integer(session, "amount_total"),
        currency=currency(session),
        attempt_bid=str(fields.get("attempt_bid") or ""),
        order_bid=str(fields.get("order_bid") or "") or text(session, "client_reference_id"),
        livemode=livemode(session),
        paid_at=intent_state.paid_at if intent_state and state == PAYMENT_SUCCEEDED else None,
        transaction_no=intent_state.transaction_no if intent_state else "",
        failure_code=failure_code,
        failure_message=failure_message,
        raw=dict(session),
    )


def refund_state(refund: Mapping[str, Any], *, livemode: bool | None = None) -> RefundState:
    """The normalised state of a Stripe refund (refunds carry no livemode of their own)."""
    refund_id = identifier(refund, "refund")
    status = text(refund, "status")
    if not status:
        raise Malformed("refund has no status")
    if status not in REFUND_STATUSES:
        # A status newer than this module: nothing is settled on a pending refund.
        logger.warning(
            "Stripe refund %s has an unknown status %r",
            refund_id,
            status,
            extra={
                "channel": CHANNEL,
                "refund_bid": str(metadata(refund).get("refund_bid") or ""),
            },
        )
    state = REFUND_STATUSES.get(status, REFUND_PENDING)
    payment_id = id_of(refund.get("payment_intent"))
    if not payment_id:
        raise Malformed("refund names no payment_intent")
    failure_code = text(refund, "failure_reason") if state == REFUND_FAILED else ""
    failure_message = ""
    if state == REFUND_FAILED:
        failure_code = failure_code or status
        failure_message = f"Stripe refund {status}: {failure_code.replace('_', ' ')}."
    return RefundState(
        provider_refund_id=refund_id,
        provider_payment_id=payment_id,
        state=state,
        amount=integer(refund, "amount"),
        currency=currency(refund),
        refund_bid=str(metadata(refund).get("refund_bid") or ""),
        livemode=livemode,
        failure_code=failure_code,
        failure_message=failure_message,
        raw=dict(refund),
    )
