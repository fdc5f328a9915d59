"""Stripe: PaymentIntents and Checkout Sessions, refunds and webhooks.

``StripeProvider`` composes the SDK adapter (``api.StripeApi``, one per instance, built
from the settings; the registry builds one instance per settings state) and the row
mapping (``rows.StripeRows``). Every create sends an Idempotency-Key derived from our own
ids (``attempt-<bid>``, ``refund-<bid>``), so the SDK's network retries, and ours, can
never pay or refund twice. Closing an attempt sends no key of ours: a close is safe to
repeat, and Stripe would replay a saved 500 to every retry under the same key for a day.

An attempt is a PaymentIntent (``payment_intent``) or a Checkout Session
(``checkout_session``) whose PaymentIntent Stripe creates once the payer confirms; both
carry our ``attempt_bid`` in their metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from django.conf import settings

from payments.models import StripeOrder
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    PaymentMethodInvalid,
    PaymentRequest,
    PaymentStart,
    PaymentState,
    ProviderBadResponse,
    ProviderEvent,
    ProviderRequestRefused,
    RefundRequest,
    RefundState,
    RowsDelegated,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
    closed_before_creation,
)
from payments.providers.payloads import Malformed, header, text
from payments.providers.stripe import params
from payments.providers.stripe.api import StripeApi, plain, verify_signature
from payments.providers.stripe.errors import CHANNEL, read_answer
from payments.providers.stripe.events import parse_event
from payments.providers.stripe.payloads import (
    PI_CANCELLABLE,
    checkout_session_state,
    id_of,
    payment_intent_state,
    refund_state,
)
from payments.providers.stripe.rows import StripeRows

SIGNATURE_HEADER = "stripe-signature"
WEBHOOK_TOLERANCE = 300  # seconds a signed webhook stays acceptable


class StripeProvider(RowsDelegated):
    """Stripe PaymentIntents and Checkout Sessions, refunds and webhooks."""

    channel: ClassVar[str] = CHANNEL
    methods: ClassVar[tuple[str, ...]] = ("payment_intent", "checkout_session")
    default_method: ClassVar[str] = "payment_intent"
    currencies: ClassVar[frozenset[str] | None] = params.CURRENCIES
    attempt_model: ClassVar[type] = StripeOrder

    # Seconds. With the retries, one call gives up within about 95 s, inside the
    # services' two-minute lease on a refund being submitted.
    connect_timeout: ClassVar[float] = 5.0
    read_timeout: ClassVar[float] = 25.0
    # The SDK retries connection errors, 409s and 5xx (as Stripe-Should-Retry says).
    # Safe: every create carries an idempotency key of ours, the same on each retry.
    max_network_retries: ClassVar[int] = 2

    app_id: str = ""
    livemode: bool | None = None  # set from the secret key
    signature_kept: bool = False
    refusal_acknowledged: bool = True

    def __init__(self) -> None:
        self._secret_key: str = settings.STRIPE_SECRET_KEY
        self._publishable_key: str = settings.STRIPE_PUBLISHABLE_KEY
        self._webhook_secret: str = settings.STRIPE_WEBHOOK_SECRET
        # Events of the other mode are refused by the webhook inbox.
        self.livemode: bool = self._secret_key.startswith(("sk_live_", "rk_live_"))
        self.api = StripeApi(
            secret_key=self._secret_key,
            api_base=settings.STRIPE_API_BASE,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_network_retries=self.max_network_retries,
        )
        self.client = self.api.client
        self.rows = StripeRows(publishable_key=self._publishable_key)

    # ---- attempt rows: RowsDelegated, to self.rows ----

    # ---- payments ----

    def start_payment(self, request: PaymentRequest) -> PaymentStart:
        if request.method not in self.methods:
            raise PaymentMethodInvalid(
                f"Stripe has no method {request.method!r}; it has {', '.join(self.methods)}.",
                channel=CHANNEL,
                method=request.method,
            )
        currency = params.check_amount(request.amount, request.currency, self.currencies)
        if request.method == "checkout_session":
            return self._start_checkout_session(request, currency)
        return self._start_payment_intent(request, currency)

    def _start_payment_intent(self, request: PaymentRequest, currency: str) -> PaymentStart:
        intent = self.api.create_payment_intent(
            params.payment_intent_params(request, currency),
            idempotency_key=f"attempt-{request.attempt_bid}",
        )
        state = read_answer(payment_intent_state, intent)
        client_secret = text(intent, "client_secret")
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
        success_url = params.return_url(request.success_url, "success_url")
        cancel_url = params.return_url(request.cancel_url, "cancel_url")
        if not success_url:
            raise PaymentMethodInvalid(
                "Stripe Checkout needs a success URL: none was given and "
                "STRIPE_CHECKOUT_SUCCESS_URL is not set.",
                channel=CHANNEL,
                method=request.method,
                missing="success_url",
            )
        session = self.api.create_checkout_session(
            params.checkout_session_params(
                request, currency, success_url=success_url, cancel_url=cancel_url
            ),
            idempotency_key=f"attempt-{request.attempt_bid}",
        )
        state = read_answer(checkout_session_state, session)
        checkout_url = text(session, "url")
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
            session = self.api.retrieve_checkout_session(
                provider_payment_id, expand=["payment_intent", "payment_intent.latest_charge"]
            )
            return read_answer(checkout_session_state, session)
        intent = self.api.retrieve_payment_intent(provider_payment_id, expand=["latest_charge"])
        return read_answer(payment_intent_state, intent)

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
        if text(state.raw, "status") not in PI_CANCELLABLE:
            # succeeded, canceled, or processing (the money may be on its way): as it is.
            return state
        try:
            intent = self.api.cancel_payment_intent(intent_id)
        except ProviderRequestRefused:
            state = self.fetch_payment(intent_id)
            if text(state.raw, "status") in PI_CANCELLABLE:
                raise  # refused for another reason than a change of status
            return state
        return read_answer(payment_intent_state, intent)

    def _close_session(self, session_id: str) -> PaymentState:
        state = self.fetch_payment(session_id)
        if text(state.raw, "status") == "open":
            try:
                session = self.api.expire_checkout_session(session_id)
            except ProviderRequestRefused:
                state = self.fetch_payment(session_id)
                if text(state.raw, "status") == "open":
                    raise  # refused for another reason than a change of status
            else:
                state = read_answer(checkout_session_state, session)
        if state.state == PAYMENT_FAILED and text(state.raw, "status") == "complete":
            # Its asynchronous payment failed: a complete session takes no other one.
            return replace(state, state=PAYMENT_CLOSED)
        # A complete session whose asynchronous payment is still processing cannot be
        # expired, nor its PaymentIntent cancelled (Stripe allows that only for
        # requires_capture): pending, the money may yet come.
        return state

    # ---- refunds ----

    def refund(self, request: RefundRequest) -> RefundState:
        params.check_amount(request.amount, request.currency, self.currencies)
        intent_id = self._payment_intent_of(request.provider_payment_id)
        refund = self.api.create_refund(
            {
                "payment_intent": intent_id,
                "amount": request.amount,
                # Our reason is free text; Stripe's `reason` is an enum that
                # Stripe-compatible servers for local runs (localstripe) refuse.
                "metadata": {"refund_bid": request.refund_bid, "reason": request.reason[:500]},
            },
            idempotency_key=f"refund-{request.refund_bid}",
        )
        return read_answer(refund_state, refund)

    def fetch_refund(self, provider_payment_id: str, provider_refund_id: str) -> RefundState:
        refund = self.api.retrieve_refund(provider_refund_id)
        state = read_answer(refund_state, refund)
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
        return [read_answer(refund_state, refund) for refund in self.api.list_refunds(intent_id)]

    def _payment_intent_of(self, provider_payment_id: str, *, required: bool = True) -> str:
        """The PaymentIntent id of an attempt's payment id (pi_..., or a session's cs_...);
        "" for a session without one, when not ``required``."""
        if not provider_payment_id.startswith("cs_"):
            return provider_payment_id
        session = self.api.retrieve_checkout_session(provider_payment_id)
        intent_id = id_of(session.get("payment_intent"))
        if not intent_id and required:
            raise ProviderRequestRefused(
                f"Checkout Session {provider_payment_id} has no PaymentIntent: nothing was paid.",
                channel=CHANNEL,
                provider_code="no_payment_intent",
            )
        return intent_id

    # ---- webhooks ----

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        if not self._webhook_secret:
            raise WebhookNotConfigured(
                "Stripe webhooks cannot be verified: STRIPE_WEBHOOK_SECRET is not set.",
                channel=CHANNEL,
            )
        signature = header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookSignatureInvalid(
                "The webhook carries no Stripe-Signature.", channel=CHANNEL, signature="missing"
            )
        try:
            text_body = body.decode("utf-8") if isinstance(body, bytes | bytearray) else str(body)
        except UnicodeDecodeError:
            raise WebhookSignatureInvalid(
                "The webhook body is not UTF-8, so Stripe did not sign it.",
                channel=CHANNEL,
                signature="invalid",
            ) from None
        verify_signature(text_body, signature, self._webhook_secret, WEBHOOK_TOLERANCE)
        try:
            event = json.loads(text_body)
        except ValueError:
            raise WebhookPayloadInvalid(
                "The webhook body is not JSON.", channel=CHANNEL, signature="valid"
            ) from None
        return self.event_from_stripe(event)

    def event_from_payload(self, payload: Mapping[str, Any]) -> ProviderEvent:
        """An event stored in the inbox after dj-stripe verified it (see payments.services)."""
        return self.event_from_stripe(payload)

    def event_from_stripe(self, event: Mapping[str, Any]) -> ProviderEvent:
        """A Stripe event (a dict, or the SDK's Event), normalised, WITHOUT verifying it.

        For events whose signature was already verified (dj-stripe's webhook view).
        """
        try:
            return parse_event(plain(event))
        except Malformed as exc:
            raise WebhookPayloadInvalid(
                f"The webhook body is not a Stripe event: {exc}.",
                channel=CHANNEL,
                signature="valid",
            ) from None

    def register_webhook_endpoint(
        self, *, url: str, events: list[str], api_version: str
    ) -> tuple[str, str]:
        """Register ``url`` at Stripe for ``events`` in ``api_version``; (id, secret).

        The idempotency key comes from the URL and events, so a retried request never
        registers a second endpoint whose secret would be unknown.
        """
        key = hashlib.sha256(f"{url} {sorted(events)} {api_version}".encode()).hexdigest()
        endpoint = self.api.create_webhook_endpoint(
            {"url": url, "enabled_events": events, "api_version": api_version},
            idempotency_key=f"webhook-endpoint-{key[:32]}",
        )
        endpoint_id, secret = text(endpoint, "id"), text(endpoint, "secret")
        if not endpoint_id or not secret:
            raise ProviderBadResponse(
                "Stripe registered the endpoint without an id or secret.", channel=CHANNEL
            )
        return endpoint_id, secret
