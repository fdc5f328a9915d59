"""The sandbox channel: a payment the user confirms on a local page; no money moves.

For trying the service and for frontend work. It behaves like a real provider: it
keeps its own view of each payment and refund (the ``provider_*`` columns of
``SandboxAttempt``), and reports what happens as signed events that go through the
same webhook inbox as Ping++'s. A system check refuses it with DEBUG off.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any, ClassVar

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from payments.models import SandboxAttempt
from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    EVENT_REFUND,
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_SUCCEEDED,
    PaymentRequest,
    PaymentStart,
    PaymentState,
    ProviderBadResponse,
    ProviderEvent,
    ProviderRequestRefused,
    RefundRequest,
    RefundState,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
    closed_before_creation,
)
from payments.providers.payloads import header

SIGNATURE_HEADER = "X-Sandbox-Signature"


def sign(body: bytes) -> str:
    return salted_hmac("payments.sandbox.webhook", body, algorithm="sha256").hexdigest()


class SandboxProvider:
    channel: ClassVar[str] = "sandbox"
    methods: ClassVar[tuple[str, ...]] = ("confirm_page",)
    default_method: ClassVar[str] = "confirm_page"
    currencies: ClassVar[frozenset[str] | None] = None
    attempt_model: ClassVar[type] = SandboxAttempt
    livemode: bool | None = None  # takes every event it signs itself
    signature_kept: bool = True
    refusal_acknowledged: bool = False
    app_id: str = ""

    # ---- attempt rows ----

    def build_attempt(self, request: PaymentRequest) -> SandboxAttempt:
        return SandboxAttempt(
            attempt_bid=request.attempt_bid,
            order_bid=request.order_bid,
            user_bid=request.user_bid,
            method=request.method,
            amount=request.amount,
            currency=request.currency,
        )

    def apply_start(self, attempt: SandboxAttempt, start: PaymentStart) -> list[str]:
        attempt.payment_id = start.provider_payment_id
        attempt.raw = dict(start.raw)
        return ["payment_id", "raw", "updated_at"]

    def apply_payment_state(self, attempt: SandboxAttempt, state: PaymentState) -> list[str]:
        attempt.raw = dict(state.raw) or attempt.raw
        attempt.failure_code = state.failure_code[:255]
        attempt.failure_message = state.failure_message
        return ["raw", "failure_code", "failure_message", "updated_at"]

    def attempts_for(self, *, attempt_bid: str = "", provider_payment_id: str = ""):
        if attempt_bid:
            return SandboxAttempt.objects.filter(attempt_bid=attempt_bid)
        return SandboxAttempt.objects.filter(payment_id=provider_payment_id or None)

    def client_data(self, attempt: SandboxAttempt) -> Mapping[str, Any]:
        return {"confirm_url": reverse("sandbox-pay", args=[attempt.attempt_bid])}

    # ---- the "provider" ----

    def start_payment(self, request: PaymentRequest) -> PaymentStart:
        payment_id = "sbx_" + secrets.token_hex(12)
        raw = self._payment_object(
            payment_id, request.attempt_bid, request.amount, request.currency, PAYMENT_PENDING
        )
        SandboxAttempt.objects.filter(attempt_bid=request.attempt_bid).update(
            provider_state=PAYMENT_PENDING
        )
        return PaymentStart(
            provider_payment_id=payment_id,
            state=PAYMENT_PENDING,
            client_data={"confirm_url": reverse("sandbox-pay", args=[request.attempt_bid])},
            raw=raw,
        )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        signature = header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookSignatureInvalid(
                "Missing sandbox signature.", channel=self.channel, signature="missing"
            )
        if not hmac.compare_digest(signature, sign(body)):
            raise WebhookSignatureInvalid("Bad sandbox signature.", channel=self.channel)
        try:
            event = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise self._not_an_event(exc) from exc
        return self.event_from_payload(event)

    def event_from_payload(self, payload: Mapping[str, Any]) -> ProviderEvent:
        """A stored event, already verified, parsed again WITHOUT its signature."""
        try:
            data = payload["data"]["object"]
            event_id, event_type = payload["id"], payload["type"]
        except (ValueError, KeyError, TypeError) as exc:
            raise self._not_an_event(exc) from exc
        if event_type.startswith("payment."):
            return ProviderEvent(
                event_id=event_id,
                event_type=event_type,
                kind=EVENT_PAYMENT,
                livemode=False,
                payment=self._payment_state(data),
                raw=payload,
            )
        if event_type.startswith("refund."):
            return ProviderEvent(
                event_id=event_id,
                event_type=event_type,
                kind=EVENT_REFUND,
                livemode=False,
                refund=self._refund_state(data),
                raw=payload,
            )
        return ProviderEvent(
            event_id=event_id, event_type=event_type, kind=EVENT_OTHER, livemode=False, raw=payload
        )

    def _not_an_event(self, exc: Exception) -> WebhookPayloadInvalid:
        return WebhookPayloadInvalid(
            f"Not a sandbox event: {exc}", channel=self.channel, signature="valid"
        )

    @transaction.atomic
    def refund(self, request: RefundRequest) -> RefundState:
        attempt = self._provider_side(request.provider_payment_id, lock=True)
        refunded = sum(r["amount"] for r in attempt.provider_refunds)
        if refunded + request.amount > attempt.amount:
            raise ProviderRequestRefused(
                f"Refund of {request.amount} exceeds what remains of {attempt.amount}.",
                channel=self.channel,
            )
        refund = {
            "id": "sbxre_" + secrets.token_hex(12),
            "object": "refund",
            "payment": request.provider_payment_id,
            "amount": request.amount,
            "currency": request.currency,
            "status": REFUND_SUCCEEDED,
            "refund_bid": request.refund_bid,
            "created": int(timezone.now().timestamp()),
        }
        attempt.provider_refunds = [*attempt.provider_refunds, refund]
        attempt.save(update_fields=["provider_refunds", "updated_at"])
        return self._refund_state(refund)

    def fetch_payment(self, provider_payment_id: str) -> PaymentState:
        attempt = self._provider_side(provider_payment_id)
        return self._payment_state(
            self._payment_object(
                provider_payment_id,
                attempt.attempt_bid,
                attempt.amount,
                attempt.currency,
                attempt.provider_state,
            )
        )

    def fetch_refund(self, provider_payment_id: str, provider_refund_id: str) -> RefundState:
        for refund in self._provider_side(provider_payment_id).provider_refunds:
            if refund["id"] == provider_refund_id:
                return self._refund_state(refund)
        raise ProviderBadResponse(f"No refund {provider_refund_id}.", channel=self.channel)

    def find_refund(self, provider_payment_id: str, refund_bid: str) -> RefundState | None:
        for refund in self._provider_side(provider_payment_id).provider_refunds:
            if refund["refund_bid"] == refund_bid:
                return self._refund_state(refund)
        return None

    def close_payment(self, attempt: SandboxAttempt) -> PaymentState:
        """Close the sandbox's side of an unpaid (pending or declined) payment, so that
        the confirm page no longer takes it; a paid one stays paid."""
        if not attempt.payment_id:
            return closed_before_creation(attempt)
        SandboxAttempt.objects.filter(
            payment_id=attempt.payment_id, provider_state__in=(PAYMENT_PENDING, PAYMENT_FAILED)
        ).update(provider_state=PAYMENT_CLOSED)
        return self.fetch_payment(attempt.payment_id)

    # ---- what the confirm page does ----

    def complete(self, attempt_bid: str, *, succeeded: bool) -> tuple[bytes, dict[str, str]]:
        """The user paid or declined: update the sandbox's side and return the signed
        event it sends (body, headers) for the webhook inbox. A closed payment is refused."""
        attempt = SandboxAttempt.objects.get(attempt_bid=attempt_bid)
        state = PAYMENT_SUCCEEDED if succeeded else PAYMENT_FAILED
        # One conditional update: a close that comes first wins, never half of each.
        updated = (
            SandboxAttempt.objects.filter(pk=attempt.pk)
            .exclude(provider_state=PAYMENT_CLOSED)
            .update(provider_state=state)
        )
        if not updated:
            raise ProviderRequestRefused(
                "The sandbox payment is closed: it can no longer be paid.",
                channel=self.channel,
                attempt_bid=attempt_bid,
            )
        payment = self._payment_object(
            attempt.payment_id or "", attempt.attempt_bid, attempt.amount, attempt.currency, state
        )
        event = {
            "id": "sbxevt_" + secrets.token_hex(12),
            "type": f"payment.{state}",
            "livemode": False,
            "created": int(timezone.now().timestamp()),
            "data": {"object": payment},
        }
        body = json.dumps(event, sort_keys=True).encode()
        return body, {SIGNATURE_HEADER: sign(body), "Content-Type": "application/json"}

    # ---- helpers ----

    def _provider_side(self, provider_payment_id: str, lock: bool = False) -> SandboxAttempt:
        attempts = SandboxAttempt.objects.filter(payment_id=provider_payment_id or None)
        attempt = (attempts.select_for_update() if lock else attempts).first()
        if attempt is None:
            raise ProviderBadResponse(
                f"No sandbox payment {provider_payment_id!r}.", channel=self.channel
            )
        return attempt

    @staticmethod
    def _payment_object(
        payment_id: str, attempt_bid: str, amount: int, currency: str, state: str
    ) -> dict[str, Any]:
        return {
            "id": payment_id,
            "object": "payment",
            "attempt_bid": attempt_bid,
            "amount": amount,
            "currency": currency,
            "status": state,
        }

    def _payment_state(self, data: Mapping[str, Any]) -> PaymentState:
        try:
            return PaymentState(
                provider_payment_id=data["id"],
                state=data["status"],
                amount=int(data["amount"]),
                currency=data["currency"],
                attempt_bid=data.get("attempt_bid", ""),
                livemode=False,
                paid_at=timezone.now() if data["status"] == PAYMENT_SUCCEEDED else None,
                failure_code="declined" if data["status"] == PAYMENT_FAILED else "",
                failure_message="declined on the sandbox page"
                if data["status"] == PAYMENT_FAILED
                else "",
                raw=dict(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WebhookPayloadInvalid(
                f"Not a sandbox payment: {exc}", channel=self.channel, signature="valid"
            ) from exc

    def _refund_state(self, data: Mapping[str, Any]) -> RefundState:
        try:
            return RefundState(
                provider_refund_id=data["id"],
                provider_payment_id=data["payment"],
                state=data["status"],
                amount=int(data["amount"]),
                currency=data["currency"],
                refund_bid=data.get("refund_bid", ""),
                livemode=False,
                raw=dict(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WebhookPayloadInvalid(
                f"Not a sandbox refund: {exc}", channel=self.channel, signature="valid"
            ) from exc
