"""Stripe: PaymentIntents and Checkout Sessions through the stripe SDK's StripeClient.

Each provider instance builds one ``StripeClient`` from the settings (the registry
builds one instance per settings state); nothing is set on the SDK's module globals.
Every create sends an Idempotency-Key derived from our own ids (``attempt-<bid>``,
``refund-<bid>``), so the SDK's network retries, and ours, can never pay or refund twice.
Closing an attempt sends no key of ours: a close is safe to repeat, and Stripe would
replay a saved 500 to every retry under the same key for a day.

An attempt is a PaymentIntent (``payment_intent``) or a Checkout Session
(``checkout_session``) whose PaymentIntent Stripe creates once the payer confirms; both
carry our ``attempt_bid`` in their metadata.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import stripe
from django.conf import settings
from django.db.models import Q, QuerySet
from django.http.request import validate_host
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from payments.models import AttemptStatus, StripeOrder
from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    EVENT_REFUND,
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    CurrencyNotSupported,
    PaymentMethodInvalid,
    PaymentRequest,
    PaymentStart,
    PaymentState,
    ProviderBadResponse,
    ProviderError,
    ProviderEvent,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundRequest,
    RefundState,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
    closed_before_creation,
)
from payments_project.money import CURRENCY_EXPONENTS

logger = logging.getLogger(__name__)

CHANNEL = "stripe"

# Currencies whose minor unit at Stripe is not the ISO 4217 one that payments_project.money
# converts with: MGA is zero-decimal at Stripe (ISO: 2); ISK is two-decimal at Stripe
# (ISO: 0, amounts in multiples of 100); UGX is zero-decimal at Stripe but has had
# two-decimal rules of its own. Refused rather than sent with a guessed exponent.
STRIPE_MINOR_UNIT_DIFFERS = frozenset({"isk", "mga", "ugx"})
# Stripe takes three-decimal currencies only with a last digit of 0 (5.120 KWD).
THREE_DECIMAL = frozenset(code for code, places in CURRENCY_EXPONENTS.items() if places == 3)

# Stripe's limits, in characters.
PRODUCT_NAME_MAX = 250
# Width of the failure code column.
FAILURE_MAX = 255
# How much of a provider message goes into an error's details.
MESSAGE_MAX = 500

# A Checkout Session expires 30 minutes to 24 hours after it is created; the margin
# covers the time between our clock reading and Stripe's.
CHECKOUT_MIN_LIFETIME = timedelta(minutes=30)
CHECKOUT_MAX_LIFETIME = timedelta(hours=24)
CHECKOUT_EXPIRY_MARGIN = timedelta(minutes=2)

SIGNATURE_HEADER = "stripe-signature"
WEBHOOK_TOLERANCE = 300  # seconds a signed webhook stays acceptable

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

PAYMENT_INTENT_EVENTS = {
    "payment_intent.succeeded": PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": PAYMENT_FAILED,
    "payment_intent.canceled": PAYMENT_CLOSED,
}
SESSION_EVENTS = {
    "checkout.session.completed": None,  # succeeded if paid, else pending (async methods)
    "checkout.session.async_payment_succeeded": PAYMENT_SUCCEEDED,
    "checkout.session.async_payment_failed": PAYMENT_FAILED,
    "checkout.session.expired": PAYMENT_CLOSED,
}
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed"})

# Paging through a PaymentIntent's refunds: 100 a page, and a bound on the total.
REFUND_PAGE_SIZE = 100
REFUND_MAX = 5000


class _Malformed(ValueError):
    """An object from Stripe that lacks what this module reads from it."""


# ---- reading Stripe objects ----


def _plain(value: Any) -> Any:
    """An SDK object, or JSON, as plain JSON-safe values (dicts, lists, scalars)."""
    if isinstance(value, stripe.StripeObject):
        return value.to_dict(recursive=True, for_json=True)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _integer(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{obj.get('object') or 'object'} has no integer {key!r}")
    return value


def _currency(obj: Mapping[str, Any]) -> str:
    currency = _text(obj, "currency")
    if not currency:
        raise _Malformed(f"{obj.get('object') or 'object'} has no currency")
    return currency.lower()


def _identifier(obj: Any, kind: str) -> str:
    if not isinstance(obj, Mapping) or obj.get("object") != kind:
        raise _Malformed(f"expected a {kind} object")
    value = obj.get("id")
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{kind} has no id")
    return value


def _id_of(value: Any) -> str:
    """The id of an expandable field: the id itself, or the expanded object's id."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return value["id"]
    return ""


def _expanded(value: Any, kind: str) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) and value.get("object") == kind else None


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _livemode(obj: Mapping[str, Any]) -> bool | None:
    value = obj.get("livemode")
    return value if isinstance(value, bool) else None


def _timestamp(obj: Mapping[str, Any] | None, key: str) -> datetime | None:
    value = (obj or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def _failure(intent: Mapping[str, Any] | None) -> tuple[str, str]:
    """(code, message) of a PaymentIntent's last payment error; the decline code first."""
    error = (intent or {}).get("last_payment_error")
    if not isinstance(error, Mapping):
        return "", ""
    code = _text(error, "decline_code") or _text(error, "code") or _text(error, "type")
    return code, _text(error, "message")


def payment_intent_state(intent: Mapping[str, Any], *, state: str = "") -> PaymentState:
    """The normalised state of a PaymentIntent (``state`` given: an event's verdict)."""
    intent_id = _identifier(intent, "payment_intent")
    status = _text(intent, "status")
    if not status:
        raise _Malformed("payment_intent has no status")
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
    amount = _integer(intent, "amount")
    charge = _expanded(intent.get("latest_charge"), "charge")
    if state == PAYMENT_SUCCEEDED:
        if status != "succeeded":
            raise _Malformed(f"payment_intent {intent_id} is {status}, not succeeded")
        # What was received: amount_received, or on servers that predate it
        # (localstripe), the amount of the succeeded charge; never the amount asked.
        if "amount_received" in intent or charge is None:
            amount = _integer(intent, "amount_received")
        else:
            amount = _integer(
                charge, "amount_captured" if "amount_captured" in charge else "amount"
            )
    metadata = _metadata(intent)
    return PaymentState(
        provider_payment_id=intent_id,
        state=state,
        amount=amount,
        currency=_currency(intent),
        attempt_bid=str(metadata.get("attempt_bid") or ""),
        order_bid=str(metadata.get("order_bid") or ""),
        livemode=_livemode(intent),
        paid_at=_timestamp(charge, "created") if state == PAYMENT_SUCCEEDED else None,
        transaction_no=_id_of(intent.get("latest_charge")),
        failure_code=failure_code,
        failure_message=failure_message,
        raw=dict(intent),
    )


def checkout_session_state(session: Mapping[str, Any], *, state: str = "") -> PaymentState:
    """The normalised state of a Checkout Session (``state`` given: an event's verdict).

    With its PaymentIntent expanded, a completed but unpaid session whose payment
    failed (an asynchronous method) is failed rather than pending.
    """
    session_id = _identifier(session, "checkout.session")
    status = _text(session, "status")
    payment_status = _text(session, "payment_status")
    if not status or not payment_status:
        raise _Malformed("checkout.session has no status or payment_status")
    intent = _expanded(session.get("payment_intent"), "payment_intent")
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
        raise _Malformed(f"checkout.session {session_id} is {status}/{payment_status}, not paid")
    failure_code, failure_message = _failure(intent)
    if state == PAYMENT_FAILED and not failure_code:
        failure_code = "async_payment_failed"
        failure_message = failure_message or "The payment of the Checkout Session failed."
    metadata = _metadata(session)
    return PaymentState(
        provider_payment_id=session_id,
        state=state,
        amount=_integer(session, "amount_total"),
        currency=_currency(session),
        attempt_bid=str(metadata.get("attempt_bid") or ""),
        order_bid=str(metadata.get("order_bid") or "") or _text(session, "client_reference_id"),
        livemode=_livemode(session),
        paid_at=intent_state.paid_at if intent_state and state == PAYMENT_SUCCEEDED else None,
        transaction_no=intent_state.transaction_no if intent_state else "",
        failure_code=failure_code,
        failure_message=failure_message,
        raw=dict(session),
    )


def refund_state(refund: Mapping[str, Any], *, livemode: bool | None = None) -> RefundState:
    """The normalised state of a Stripe refund (refunds carry no livemode of their own)."""
    refund_id = _identifier(refund, "refund")
    status = _text(refund, "status")
    if not status:
        raise _Malformed("refund has no status")
    if status not in REFUND_STATUSES:
        # A status newer than this module: nothing is settled on a pending refund.
        logger.warning(
            "Stripe refund %s has an unknown status %r",
            refund_id,
            status,
            extra={
                "channel": CHANNEL,
                "refund_bid": str(_metadata(refund).get("refund_bid") or ""),
            },
        )
    state = REFUND_STATUSES.get(status, REFUND_PENDING)
    payment_id = _id_of(refund.get("payment_intent"))
    if not payment_id:
        raise _Malformed("refund names no payment_intent")
    failure_code = _text(refund, "failure_reason") if state == REFUND_FAILED else ""
    failure_message = ""
    if state == REFUND_FAILED:
        failure_code = failure_code or status
        failure_message = f"Stripe refund {status}: {failure_code.replace('_', ' ')}."
    return RefundState(
        provider_refund_id=refund_id,
        provider_payment_id=payment_id,
        state=state,
        amount=_integer(refund, "amount"),
        currency=_currency(refund),
        refund_bid=str(_metadata(refund).get("refund_bid") or ""),
        livemode=livemode,
        failure_code=failure_code,
        failure_message=failure_message,
        raw=dict(refund),
    )


# ---- errors ----


def _translate(exc: stripe.StripeError, operation: str) -> ProviderError:
    """The project error for an SDK error: unavailable, refused, or unreadable."""
    status = exc.http_status if isinstance(exc.http_status, int) else None
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error_object = body.get("error") if isinstance(body.get("error"), dict) else {}
    details: dict[str, Any] = {
        "operation": operation,
        "http_status": status,
        "provider_message": (exc.user_message or "")[:MESSAGE_MAX],
    }
    # Not "code": ServiceError takes that keyword as the error's own code.
    provider_code = exc.code or error_object.get("code")
    if provider_code:
        details["provider_code"] = str(provider_code)
    if error_object.get("decline_code"):
        details["decline_code"] = str(error_object["decline_code"])
    if error_object.get("type"):
        details["provider_error_type"] = str(error_object["type"])
    if getattr(exc, "param", None):
        details["param"] = str(exc.param)
    if exc.request_id:
        details["request_id"] = str(exc.request_id)
    logger.warning(
        "Stripe %s failed: %s (HTTP %s, code %s)",
        operation,
        type(exc).__name__,
        status,
        details.get("provider_code", "-"),
        extra={"channel": CHANNEL, "operation": operation, "http_status": status},
    )
    message = details["provider_message"] or "no reason given"
    if isinstance(exc, stripe.RateLimitError):
        # Too many requests: nothing was done, and the same request may pass later.
        return ProviderUnavailable("Stripe is rate limiting requests.", channel=CHANNEL, **details)
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderUnavailable("Stripe could not be reached.", channel=CHANNEL, **details)
    if isinstance(exc, stripe.IdempotencyError) or provider_code == "idempotency_key_in_use":
        # Another request with the same key is still running: it may yet succeed.
        return ProviderUnavailable(
            f"Stripe is still processing this request: {message}", channel=CHANNEL, **details
        )
    if isinstance(exc, stripe.CardError):
        # A decline: not expected when only creating, but it is Stripe's answer.
        return ProviderRequestRefused(
            f"Stripe declined the payment: {message}", channel=CHANNEL, **details
        )
    refused = (
        stripe.InvalidRequestError,
        stripe.AuthenticationError,
        stripe.PermissionError,
    )
    if isinstance(exc, refused):
        return ProviderRequestRefused(
            f"Stripe refused the request: {message}", channel=CHANNEL, **details
        )
    if isinstance(exc, stripe.APIError) and (status is None or status >= 500):
        return ProviderUnavailable(
            f"Stripe answered HTTP {status or 'without a status'}.", channel=CHANNEL, **details
        )
    if isinstance(exc, stripe.APIError) and error_object and 400 <= (status or 0) < 500:
        return ProviderRequestRefused(
            f"Stripe refused the request: {message}", channel=CHANNEL, **details
        )
    return ProviderBadResponse("Stripe answered something unreadable.", channel=CHANNEL, **details)


# ---- the provider ----


class StripeProvider:
    """Stripe PaymentIntents and Checkout Sessions, refunds and webhooks."""

    channel: ClassVar[str] = CHANNEL
    methods: ClassVar[tuple[str, ...]] = ("payment_intent", "checkout_session")
    default_method: ClassVar[str] = "payment_intent"
    currencies: ClassVar[frozenset[str] | None] = (
        frozenset(CURRENCY_EXPONENTS) - STRIPE_MINOR_UNIT_DIFFERS
    )
    attempt_model: ClassVar[type] = StripeOrder

    # Seconds. With the retries, one call gives up within about 95 s, inside the
    # services' two-minute lease on a refund being submitted.
    connect_timeout: ClassVar[float] = 5.0
    read_timeout: ClassVar[float] = 25.0
    # The SDK retries connection errors, 409s and 5xx (as Stripe-Should-Retry says).
    # Safe: every create carries an idempotency key of ours, the same on each retry.
    max_network_retries: ClassVar[int] = 2

    app_id: str = ""

    def __init__(self) -> None:
        self._secret_key: str = settings.STRIPE_SECRET_KEY
        self._publishable_key: str = settings.STRIPE_PUBLISHABLE_KEY
        self._webhook_secret: str = settings.STRIPE_WEBHOOK_SECRET
        # Events of the other mode are refused by the webhook inbox.
        self.livemode: bool = self._secret_key.startswith(("sk_live_", "rk_live_"))
        self.client = stripe.StripeClient(
            api_key=self._secret_key,
            base_addresses={"api": settings.STRIPE_API_BASE.rstrip("/")},
            http_client=stripe.RequestsClient(timeout=(self.connect_timeout, self.read_timeout)),
            max_network_retries=self.max_network_retries,
        )

    # ---- attempt rows ----

    def build_attempt(self, request: PaymentRequest) -> StripeOrder:
        return StripeOrder(
            stripe_order_bid=request.attempt_bid,
            user_bid=request.user_bid,
            product_bid=request.product_bid,
            order_bid=request.order_bid,
            payment_intent_id=None,
            checkout_session_id=None,
            amount=request.amount,
            currency=request.currency.lower(),
            status=AttemptStatus.PENDING,
            metadata=self._metadata(request),
        )

    def apply_start(self, attempt: StripeOrder, start: PaymentStart) -> list[str]:
        raw = _plain(start.raw)
        if raw.get("object") == "checkout.session":
            attempt.checkout_session_id = start.provider_payment_id
            attempt.checkout_session_object = raw
            changed = ["checkout_session_id", "checkout_session_object"]
            intent = raw.get("payment_intent")
            if _id_of(intent) and not attempt.payment_intent_id:
                attempt.payment_intent_id = _id_of(intent)
                changed.append("payment_intent_id")
            if _expanded(intent, "payment_intent"):
                attempt.payment_intent_object = intent
                changed.append("payment_intent_object")
        else:
            attempt.payment_intent_id = start.provider_payment_id
            attempt.payment_intent_object = raw
            changed = ["payment_intent_id", "payment_intent_object"]
        return [*changed, "updated_at"]

    def apply_payment_state(self, attempt: StripeOrder, state: PaymentState) -> list[str]:
        changed: list[str] = []

        def put(field: str, value: Any) -> None:
            if getattr(attempt, field) != value:
                setattr(attempt, field, value)
                changed.append(field)

        raw = _plain(state.raw)
        kind = raw.get("object")
        payment_id = state.provider_payment_id
        if payment_id.startswith("cs_") and not attempt.checkout_session_id:
            put("checkout_session_id", payment_id)
        if payment_id.startswith("pi_") and not attempt.payment_intent_id:
            put("payment_intent_id", payment_id)
        intent: Mapping[str, Any] | None = None
        if kind == "checkout.session":
            put("checkout_session_object", raw)
            intent_id = _id_of(raw.get("payment_intent"))
            if intent_id and not attempt.payment_intent_id:
                put("payment_intent_id", intent_id)
            intent = _expanded(raw.get("payment_intent"), "payment_intent")
        elif kind == "payment_intent":
            intent = raw
        if intent is not None and intent.get("id") == attempt.payment_intent_id:
            put("payment_intent_object", dict(intent))
            charge = intent.get("latest_charge")
            if _id_of(charge):
                put("latest_charge_id", _id_of(charge)[:255])
            receipt_url = _text(_expanded(charge, "charge") or {}, "receipt_url")
            if receipt_url:
                put("receipt_url", receipt_url[:500])
            if _id_of(intent.get("payment_method")):
                put("payment_method", _id_of(intent.get("payment_method"))[:255])
        if state.failure_code or state.failure_message:
            put("failure_code", state.failure_code[:FAILURE_MAX])
            put("failure_message", state.failure_message)
        elif state.state == PAYMENT_SUCCEEDED:
            # Stripe clears the last payment error once a payment goes through.
            put("failure_code", "")
            put("failure_message", "")
        return [*changed, "updated_at"] if changed else []

    def attempts_for(
        self, *, attempt_bid: str = "", provider_payment_id: str = ""
    ) -> QuerySet[StripeOrder]:
        condition = Q()
        if attempt_bid:
            condition |= Q(stripe_order_bid=attempt_bid)
        if provider_payment_id:
            # pi_... or cs_...; a session's attempt also knows its PaymentIntent.
            condition |= Q(payment_intent_id=provider_payment_id)
            condition |= Q(checkout_session_id=provider_payment_id)
        if not condition:
            return StripeOrder.objects.none()
        return StripeOrder.objects.filter(condition)

    def client_data(self, attempt: StripeOrder) -> Mapping[str, Any]:
        if attempt.checkout_session_id:
            session = attempt.checkout_session_object
            session = session if isinstance(session, Mapping) else {}
            return {
                "checkout_url": _text(session, "url"),
                "checkout_session_id": attempt.checkout_session_id,
            }
        intent = attempt.payment_intent_object
        intent = intent if isinstance(intent, Mapping) else {}
        return {
            "client_secret": _text(intent, "client_secret"),
            "publishable_key": self._publishable_key,
            "payment_intent_id": attempt.payment_intent_id or "",
        }

    # ---- payments ----

    def start_payment(self, request: PaymentRequest) -> PaymentStart:
        if request.method not in self.methods:
            raise PaymentMethodInvalid(
                f"Stripe has no method {request.method!r}; it has {', '.join(self.methods)}.",
                channel=CHANNEL,
                method=request.method,
            )
        currency = self._check_amount(request.amount, request.currency)
        if request.method == "checkout_session":
            return self._start_checkout_session(request, currency)
        return self._start_payment_intent(request, currency)

    def _start_payment_intent(self, request: PaymentRequest, currency: str) -> PaymentStart:
        metadata = self._metadata(request)
        params: dict[str, Any] = {
            "amount": request.amount,
            "currency": currency,
            "payment_method_types": ["card"],
            "metadata": metadata,
        }
        # No description: the metadata says what was bought, and Stripe-compatible
        # servers used for local runs (localstripe) refuse the field.
        intent = self._call(
            "create_payment_intent",
            self.client.v1.payment_intents.create,
            params=params,
            options={"idempotency_key": f"attempt-{request.attempt_bid}"},
        )
        state = self._api_value(payment_intent_state, intent)
        client_secret = _text(intent, "client_secret")
        if not client_secret and state.state == PAYMENT_PENDING:
            raise ProviderBadResponse(
                "Stripe gave a PaymentIntent without a client secret.",
                channel=CHANNEL,
                operation="create_payment_intent",
                payment_intent_id=state.provider_payment_id,
            )
        return PaymentStart(
            provider_payment_id=state.provider_payment_id,
            state=PAYMENT_SUCCEEDED if state.state == PAYMENT_SUCCEEDED else PAYMENT_PENDING,
            client_data={
                "client_secret": client_secret,
                "publishable_key": self._publishable_key,
                "payment_intent_id": state.provider_payment_id,
            },
            raw=intent,
        )

    def _start_checkout_session(self, request: PaymentRequest, currency: str) -> PaymentStart:
        success_url = self._return_url(request.success_url, "success_url")
        cancel_url = self._return_url(request.cancel_url, "cancel_url")
        if not success_url:
            raise PaymentMethodInvalid(
                "Stripe Checkout needs a success URL: none was given and "
                "STRIPE_CHECKOUT_SUCCESS_URL is not set.",
                channel=CHANNEL,
                method=request.method,
                missing="success_url",
            )
        metadata = self._metadata(request)
        name = request.subject.strip()[:PRODUCT_NAME_MAX] or f"Order {request.order_bid}"
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "unit_amount": request.amount,
                        "product_data": {"name": name},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": success_url,
            "client_reference_id": request.order_bid,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
        }
        if cancel_url:
            params["cancel_url"] = cancel_url
        expires_at = self._checkout_expiry(request.expires_at)
        if expires_at is not None:
            params["expires_at"] = expires_at
        session = self._call(
            "create_checkout_session",
            self.client.v1.checkout.sessions.create,
            params=params,
            options={"idempotency_key": f"attempt-{request.attempt_bid}"},
        )
        state = self._api_value(checkout_session_state, session)
        checkout_url = _text(session, "url")
        if not checkout_url and state.state == PAYMENT_PENDING:
            raise ProviderBadResponse(
                "Stripe gave a Checkout Session without a URL.",
                channel=CHANNEL,
                operation="create_checkout_session",
                checkout_session_id=state.provider_payment_id,
            )
        return PaymentStart(
            provider_payment_id=state.provider_payment_id,
            state=PAYMENT_SUCCEEDED if state.state == PAYMENT_SUCCEEDED else PAYMENT_PENDING,
            client_data={
                "checkout_url": checkout_url,
                "checkout_session_id": state.provider_payment_id,
            },
            raw=session,
        )

    def fetch_payment(self, provider_payment_id: str) -> PaymentState:
        if provider_payment_id.startswith("cs_"):
            session = self._call(
                "retrieve_checkout_session",
                self.client.v1.checkout.sessions.retrieve,
                provider_payment_id,
                params={"expand": ["payment_intent", "payment_intent.latest_charge"]},
            )
            return self._api_value(checkout_session_state, session)
        intent = self._call(
            "retrieve_payment_intent",
            self.client.v1.payment_intents.retrieve,
            provider_payment_id,
            params={"expand": ["latest_charge"]},
        )
        return self._api_value(payment_intent_state, intent)

    # ---- closing ----

    def close_payment(self, attempt: StripeOrder) -> PaymentState:
        """Expire the attempt's Checkout Session, or cancel its PaymentIntent.

        Looks first, so that only what Stripe lets be closed is sent; a refusal (paid
        between the look and the close) is answered with a second look.
        """
        if attempt.checkout_session_id:
            return self._close_session(attempt.checkout_session_id)
        if attempt.payment_intent_id:
            return self._close_payment_intent(attempt.payment_intent_id)
        return closed_before_creation(attempt)

    def _close_payment_intent(self, intent_id: str) -> PaymentState:
        state = self.fetch_payment(intent_id)
        if _text(state.raw, "status") not in PI_CANCELLABLE:
            # succeeded, canceled, or processing (the money may be on its way): as it is.
            return state
        try:
            intent = self._call(
                "cancel_payment_intent",
                self.client.v1.payment_intents.cancel,
                intent_id,
            )
        except ProviderRequestRefused:
            state = self.fetch_payment(intent_id)
            if _text(state.raw, "status") in PI_CANCELLABLE:
                raise  # refused for another reason than a change of status
            return state
        return self._api_value(payment_intent_state, intent)

    def _close_session(self, session_id: str) -> PaymentState:
        state = self.fetch_payment(session_id)
        if _text(state.raw, "status") == "open":
            try:
                session = self._call(
                    "expire_checkout_session",
                    self.client.v1.checkout.sessions.expire,
                    session_id,
                )
            except ProviderRequestRefused:
                state = self.fetch_payment(session_id)
                if _text(state.raw, "status") == "open":
                    raise  # refused for another reason than a change of status
            else:
                state = self._api_value(checkout_session_state, session)
        if state.state == PAYMENT_FAILED and _text(state.raw, "status") == "complete":
            # Its asynchronous payment failed: a complete session takes no other one.
            return replace(state, state=PAYMENT_CLOSED)
        # A complete session whose asynchronous payment is still processing cannot be
        # expired, nor its PaymentIntent cancelled (Stripe allows that only for
        # requires_capture): pending, the money may yet come.
        return state

    # ---- refunds ----

    def refund(self, request: RefundRequest) -> RefundState:
        self._check_amount(request.amount, request.currency)
        intent_id = self._payment_intent_of(request.provider_payment_id)
        refund = self._call(
            "create_refund",
            self.client.v1.refunds.create,
            params={
                "payment_intent": intent_id,
                "amount": request.amount,
                # Our reason is free text; Stripe's `reason` is an enum that
                # Stripe-compatible servers for local runs (localstripe) refuse.
                "metadata": {"refund_bid": request.refund_bid, "reason": request.reason[:500]},
            },
            options={"idempotency_key": f"refund-{request.refund_bid}"},
        )
        return self._api_value(refund_state, refund)

    def fetch_refund(self, provider_payment_id: str, provider_refund_id: str) -> RefundState:
        refund = self._call("retrieve_refund", self.client.v1.refunds.retrieve, provider_refund_id)
        state = self._api_value(refund_state, refund)
        if provider_payment_id.startswith("pi_") and state.provider_payment_id != (
            provider_payment_id
        ):
            raise ProviderBadResponse(
                f"Stripe refund {provider_refund_id} is of {state.provider_payment_id}, "
                f"not {provider_payment_id}.",
                channel=CHANNEL,
                operation="retrieve_refund",
            )
        return state

    def find_refund(self, provider_payment_id: str, refund_bid: str) -> RefundState | None:
        """The refund whose metadata names ``refund_bid``, reading every page.

        Prefers a pending or succeeded refund over a failed one made for the same bid.
        Raises rather than answer None when the list cannot be read to its end, since
        None lets the caller refund again.
        """
        if not refund_bid:
            raise ValueError("find_refund needs a refund_bid.")
        found = [
            refund
            for refund in self.refunds_of(provider_payment_id)
            if refund.refund_bid == refund_bid
        ]
        live = [refund for refund in found if refund.state != REFUND_FAILED]
        return (live or found or [None])[0]

    def refunds_of(self, payment_intent_id: str) -> list[RefundState]:
        """Every refund of a PaymentIntent (or of a Checkout Session's), newest first.

        A Checkout Session that has no PaymentIntent took no money, so has no refunds.
        """
        intent_id = self._payment_intent_of(payment_intent_id, required=False)
        if not intent_id:
            return []

        def read_all() -> list[Any]:
            page = self.client.v1.refunds.list(
                params={"payment_intent": intent_id, "limit": REFUND_PAGE_SIZE}
            )
            refunds = []
            for refund in page.auto_paging_iter():
                refunds.append(refund)
                if len(refunds) > REFUND_MAX:
                    raise ProviderBadResponse(
                        f"PaymentIntent {intent_id} has more than {REFUND_MAX} refunds.",
                        channel=CHANNEL,
                        operation="list_refunds",
                    )
            return refunds

        refunds = self._call("list_refunds", read_all)
        return [self._api_value(refund_state, refund) for refund in refunds]

    # ---- webhooks ----

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        if not self._webhook_secret:
            raise WebhookNotConfigured(
                "Stripe webhooks cannot be verified: STRIPE_WEBHOOK_SECRET is not set.",
                channel=CHANNEL,
            )
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookSignatureInvalid(
                "The webhook carries no Stripe-Signature.", channel=CHANNEL, signature="missing"
            )
        try:
            text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else str(body)
        except UnicodeDecodeError:
            raise WebhookSignatureInvalid(
                "The webhook body is not UTF-8, so Stripe did not sign it.",
                channel=CHANNEL,
                signature="invalid",
            ) from None
        try:
            stripe.WebhookSignature.verify_header(
                text, signature, self._webhook_secret, WEBHOOK_TOLERANCE
            )
        except stripe.SignatureVerificationError as exc:
            raise WebhookSignatureInvalid(
                f"The webhook signature does not verify: {exc.user_message}",
                channel=CHANNEL,
                signature="invalid",
            ) from None
        try:
            event = json.loads(text)
        except ValueError:
            raise WebhookPayloadInvalid(
                "The webhook body is not JSON.", channel=CHANNEL, signature="valid"
            ) from None
        return self.event_from_stripe(event)

    def register_webhook_endpoint(
        self, *, url: str, events: list[str], api_version: str
    ) -> tuple[str, str]:
        """Register ``url`` at Stripe for ``events`` in ``api_version``; (id, secret).

        The idempotency key comes from the URL and events, so a retried request never
        registers a second endpoint whose secret would be unknown.
        """
        key = hashlib.sha256(f"{url} {sorted(events)} {api_version}".encode()).hexdigest()
        endpoint = self._call(
            "create_webhook_endpoint",
            self.client.v1.webhook_endpoints.create,
            params={"url": url, "enabled_events": events, "api_version": api_version},
            options={"idempotency_key": f"webhook-endpoint-{key[:32]}"},
        )
        endpoint_id, secret = _text(endpoint, "id"), _text(endpoint, "secret")
        if not endpoint_id or not secret:
            raise ProviderBadResponse(
                "Stripe registered the endpoint without an id or secret.", channel=CHANNEL
            )
        return endpoint_id, secret

    def event_from_payload(self, event: Mapping[str, Any]) -> ProviderEvent:
        """An event stored in the inbox after dj-stripe verified it (see payments.services)."""
        return self.event_from_stripe(event)

    def event_from_stripe(self, event: Mapping[str, Any]) -> ProviderEvent:
        """A Stripe event (a dict, or the SDK's Event), normalised, WITHOUT verifying it.

        For events whose signature was already verified (dj-stripe's webhook view).
        """
        try:
            return self._event(_plain(event))
        except _Malformed as exc:
            raise WebhookPayloadInvalid(
                f"The webhook body is not a Stripe event: {exc}.",
                channel=CHANNEL,
                signature="valid",
            ) from None

    def _event(self, event: Any) -> ProviderEvent:
        if not isinstance(event, dict):
            raise _Malformed("not an object")
        if event.get("object", "event") != "event":
            raise _Malformed(f"an object of type {event.get('object')!r}, not event")
        event_id, event_type = event.get("id"), event.get("type")
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
            raise _Malformed("no id or type")
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            raise _Malformed("no data.object")
        livemode = _livemode(event)
        common = {
            "event_id": event_id,
            "event_type": event_type,
            "livemode": livemode,
            "raw": event,
        }
        if event_type in PAYMENT_INTENT_EVENTS:
            payment = payment_intent_state(obj, state=PAYMENT_INTENT_EVENTS[event_type])
            return ProviderEvent(kind=EVENT_PAYMENT, payment=payment, **common)
        if event_type in SESSION_EVENTS:
            payment = checkout_session_state(obj, state=self._session_event_state(event_type, obj))
            return ProviderEvent(kind=EVENT_PAYMENT, payment=payment, **common)
        if event_type in REFUND_EVENTS:
            refund = refund_state(obj, livemode=livemode)
            return ProviderEvent(kind=EVENT_REFUND, refund=refund, **common)
        if event_type == "charge.refunded":
            _identifier(obj, "charge")
            latest = self._latest_refund(obj)
            if latest is None:
                return ProviderEvent(kind=EVENT_OTHER, **common)
            if not latest.get("payment_intent") and obj.get("payment_intent"):
                latest = {**latest, "payment_intent": obj["payment_intent"]}
            refund = refund_state(latest, livemode=livemode)
            return ProviderEvent(kind=EVENT_REFUND, refund=refund, **common)
        return ProviderEvent(kind=EVENT_OTHER, **common)

    @staticmethod
    def _session_event_state(event_type: str, session: Mapping[str, Any]) -> str:
        state = SESSION_EVENTS[event_type]
        if state is not None:
            return state
        # checkout.session.completed: paid now, or later by an asynchronous method.
        paid = _text(session, "payment_status") in SESSION_PAID
        return PAYMENT_SUCCEEDED if paid else PAYMENT_PENDING

    @staticmethod
    def _latest_refund(charge: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The newest refund a charge carries (only when its refunds were expanded)."""
        refunds = charge.get("refunds")
        data = refunds.get("data") if isinstance(refunds, Mapping) else None
        if not isinstance(data, list) or not data:
            return None
        items = [item for item in data if isinstance(item, Mapping)]
        if len(items) != len(data):
            raise _Malformed("charge.refunds holds something other than refunds")
        # Stripe lists the newest first; "created" settles ties of order.
        return max(
            items,
            key=lambda item: (
                item.get("created") if isinstance(item.get("created"), int) else 0,
                -items.index(item),
            ),
        )

    # ---- helpers ----

    @staticmethod
    def _metadata(request: PaymentRequest) -> dict[str, str]:
        return {
            **{str(key): str(value) for key, value in request.metadata.items()},
            "order_bid": request.order_bid,
            "attempt_bid": request.attempt_bid,
            "product_bid": request.product_bid,
        }

    def _check_amount(self, amount: int, currency: str) -> str:
        """The lower-case currency, when Stripe takes it and the amount fits it."""
        code = (currency or "").strip().lower()
        if code not in (self.currencies or ()):
            raise CurrencyNotSupported(
                f"The stripe channel does not take {currency!r}"
                + (
                    ": Stripe's minor unit for it is not the ISO 4217 one."
                    if code in STRIPE_MINOR_UNIT_DIFFERS
                    else "."
                ),
                channel=CHANNEL,
                currency=currency,
            )
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ProviderRequestRefused(
                f"Stripe takes a positive integer amount, not {amount!r}.",
                channel=CHANNEL,
                provider_code="amount_invalid",
            )
        if code in THREE_DECIMAL and amount % 10:
            raise ProviderRequestRefused(
                f"Stripe takes {code.upper()} amounts only in multiples of 10 minor units, "
                f"not {amount}.",
                channel=CHANNEL,
                provider_code="amount_not_multiple_of_ten",
                currency=code,
            )
        return code

    def _return_url(self, given: str, which: str) -> str:
        """A return URL for Checkout: the request's, checked against ALLOWED_HOSTS, or
        the configured default."""
        default = {
            "success_url": settings.STRIPE_CHECKOUT_SUCCESS_URL,
            "cancel_url": settings.STRIPE_CHECKOUT_CANCEL_URL,
        }[which]
        url = (given or "").strip()
        if not url:
            return default
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        # Hosts as ALLOWED_HOSTS names them ("example.com", ".example.com"), never "*":
        # a return URL anywhere would make Checkout an open redirect.
        patterns = [pattern for pattern in settings.ALLOWED_HOSTS if pattern != "*"]
        allowed = bool(host) and validate_host(host, patterns)
        if not (
            allowed
            and parts.scheme in ("http", "https")
            and url_has_allowed_host_and_scheme(
                url, allowed_hosts={parts.netloc}, require_https=not settings.DEBUG
            )
        ):
            schemes = "http(s)" if settings.DEBUG else "https"
            raise PaymentMethodInvalid(
                f"The {which.replace('_', ' ')} must be an {schemes} URL on one of this "
                "service's ALLOWED_HOSTS.",
                channel=CHANNEL,
                method="checkout_session",
                invalid=which,
            )
        return url

    @staticmethod
    def _checkout_expiry(expires_at: datetime | None) -> int | None:
        """``expires_at`` as a timestamp when Stripe accepts it for a session, else None
        (the session then lives Stripe's default 24 hours)."""
        if expires_at is None:
            return None
        now = timezone.now()
        earliest = now + CHECKOUT_MIN_LIFETIME + CHECKOUT_EXPIRY_MARGIN
        latest = now + CHECKOUT_MAX_LIFETIME - CHECKOUT_EXPIRY_MARGIN
        if not earliest <= expires_at <= latest:
            return None
        return int(expires_at.timestamp())

    def _payment_intent_of(self, provider_payment_id: str, *, required: bool = True) -> str:
        """The PaymentIntent id of an attempt's payment id (pi_..., or a session's cs_...);
        "" for a session without one, when not ``required``."""
        if not provider_payment_id.startswith("cs_"):
            return provider_payment_id
        session = self._call(
            "retrieve_checkout_session",
            self.client.v1.checkout.sessions.retrieve,
            provider_payment_id,
        )
        intent_id = _id_of(session.get("payment_intent"))
        if not intent_id and required:
            raise ProviderRequestRefused(
                f"Checkout Session {provider_payment_id} has no PaymentIntent: nothing was paid.",
                channel=CHANNEL,
                provider_code="no_payment_intent",
            )
        return intent_id

    def _call(self, operation: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the SDK; its errors become project errors, its result plain data."""
        if not self._secret_key:
            raise ProviderRequestRefused(
                "STRIPE_SECRET_KEY is not set.", channel=CHANNEL, operation=operation
            )
        try:
            result = function(*args, **kwargs)
        except stripe.StripeError as exc:
            raise _translate(exc, operation) from exc
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # The SDK could not build an object from what it was given.
            raise ProviderBadResponse(
                f"Stripe answered something unreadable: {exc}.",
                channel=CHANNEL,
                operation=operation,
            ) from exc
        plain = _plain(result)
        if isinstance(result, stripe.StripeObject) and not isinstance(plain, dict):
            raise ProviderBadResponse(
                "Stripe answered something other than an object.",
                channel=CHANNEL,
                operation=operation,
            )
        return plain

    @staticmethod
    def _api_value(build: Callable[..., Any], obj: Any) -> Any:
        try:
            return build(obj)
        except _Malformed as exc:
            raise ProviderBadResponse(
                f"Stripe answered something unreadable: {exc}.", channel=CHANNEL
            ) from None


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever the mapping's case (or WSGI ``HTTP_`` form)."""
    wanted = name.lower()
    for key, value in headers.items():
        normal = str(key).lower().replace("_", "-")
        if normal in (wanted, f"http-{wanted}"):
            return str(value or "")
    return ""
