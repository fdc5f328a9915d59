"""Stripe's attempt rows (StripeOrder): built, and updated from what Stripe says.

Only fields are read and set here; the services save the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Q, QuerySet

from payments.models import AttemptStatus, StripeOrder
from payments.providers.base import PAYMENT_SUCCEEDED, PaymentRequest, PaymentStart, PaymentState
from payments.providers.payloads import text
from payments.providers.stripe.api import plain
from payments.providers.stripe.params import request_metadata
from payments.providers.stripe.payloads import expanded, id_of

# Width of the receipt URL and failure columns (the platform's VARCHAR(255)).
TEXT_MAX = 255


class StripeRows:
    """The row mapping of the stripe channel; ``publishable_key`` goes to the client."""

    def __init__(self, *, publishable_key: str) -> None:
        self.publishable_key = publishable_key

    def build_attempt(self, request: PaymentRequest) -> StripeOrder:
        return StripeOrder(
            stripe_order_bid=request.attempt_bid,
            user_bid=request.user_bid,
            product_bid=request.product_bid,
            order_bid=request.order_bid,
            payment_intent_id="",
            checkout_session_id="",
            amount=request.amount,
            currency=request.currency.lower(),
            status=AttemptStatus.PENDING,
            metadata=request_metadata(request),
        )

    def apply_start(self, attempt: StripeOrder, start: PaymentStart) -> list[str]:
        raw = plain(start.raw)
        if raw.get("object") == "checkout.session":
            attempt.checkout_session_id = start.provider_payment_id
            attempt.checkout_session_object = raw
            changed = ["checkout_session_id", "checkout_session_object"]
            intent = raw.get("payment_intent")
            if id_of(intent) and not attempt.payment_intent_id:
                attempt.payment_intent_id = id_of(intent)
                changed.append("payment_intent_id")
            if expanded(intent, "payment_intent"):
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

        raw = plain(state.raw)
        kind = raw.get("object")
        payment_id = state.provider_payment_id
        if payment_id.startswith("cs_") and not attempt.checkout_session_id:
            put("checkout_session_id", payment_id)
        if payment_id.startswith("pi_") and not attempt.payment_intent_id:
            put("payment_intent_id", payment_id)
        intent: Mapping[str, Any] | None = None
        if kind == "checkout.session":
            put("checkout_session_object", raw)
            intent_id = id_of(raw.get("payment_intent"))
            if intent_id and not attempt.payment_intent_id:
                put("payment_intent_id", intent_id)
            intent = expanded(raw.get("payment_intent"), "payment_intent")
        elif kind == "payment_intent":
            intent = raw
        if intent is not None and intent.get("id") == attempt.payment_intent_id:
            put("payment_intent_object", dict(intent))
            charge = intent.get("latest_charge")
            if id_of(charge):
                put("latest_charge_id", id_of(charge)[:255])
            receipt_url = text(expanded(charge, "charge") or {}, "receipt_url")
            if receipt_url:
                put("receipt_url", receipt_url[:TEXT_MAX])
            if id_of(intent.get("payment_method")):
                put("payment_method", id_of(intent.get("payment_method"))[:255])
        if state.failure_code or state.failure_message:
            put("failure_code", state.failure_code[:TEXT_MAX])
            put("failure_message", state.failure_message[:TEXT_MAX])
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
                "checkout_url": text(session, "url"),
                "checkout_session_id": attempt.checkout_session_id,
            }
        intent = attempt.payment_intent_object
        intent = intent if isinstance(intent, Mapping) else {}
        return {
            "client_secret": text(intent, "client_secret"),
            "publishable_key": self.publishable_key,
            "payment_intent_id": attempt.payment_intent_id or "",
        }
