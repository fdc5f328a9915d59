"""The Stripe API: the only module that calls the stripe SDK.

``StripeApi`` holds one ``StripeClient`` built from the values it is given; nothing is
set on the SDK's module globals. Each call answers plain JSON (dicts, lists, scalars)
or raises a ProviderError subclass (see ``errors``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import stripe

from payments.providers.base import (
    ProviderBadResponse,
    ProviderRequestRefused,
    WebhookSignatureInvalid,
)
from payments.providers.payloads import plain as plain_json
from payments.providers.stripe.errors import CHANNEL, translate, unreadable

# Paging through a PaymentIntent's refunds: 100 a page, and a bound on the total.
REFUND_PAGE_SIZE = 100
REFUND_MAX = 5000


def _unwrap(value: Any) -> Any:
    if isinstance(value, stripe.StripeObject):
        return value.to_dict(recursive=True, for_json=True)
    return value


def plain(value: Any) -> Any:
    """An SDK object (an Event, a PaymentIntent...), or JSON, as plain JSON-safe values."""
    return plain_json(value, _unwrap)


def verify_signature(payload: str, header: str, secret: str, tolerance: int) -> None:
    """Check a webhook's Stripe-Signature against its body; raises WebhookSignatureInvalid.

    Through dj-stripe's own check (an unsaved trigger: nothing is stored), so that a
    Stripe signature is verified one way only, the way dj-stripe then processes it."""
    from djstripe.models import WebhookEventTrigger

    trigger = WebhookEventTrigger(body=payload, headers={"stripe-signature": header})
    if not trigger.verify_signature(secret, tolerance):
        raise WebhookSignatureInvalid(
            "The webhook signature does not verify.", channel=CHANNEL, signature="invalid"
        )


class StripeApi:
    """The calls this service makes to Stripe, through one StripeClient."""

    def __init__(
        self,
        *,
        secret_key: str,
        api_base: str,
        connect_timeout: float,
        read_timeout: float,
        max_network_retries: int,
    ) -> None:
        self.secret_key = secret_key
        self.client = stripe.StripeClient(
            api_key=secret_key,
            base_addresses={"api": api_base.rstrip("/")},
            http_client=stripe.RequestsClient(timeout=(connect_timeout, read_timeout)),
            max_network_retries=max_network_retries,
        )

    # ---- PaymentIntents ----

    def create_payment_intent(self, params: dict[str, Any], *, idempotency_key: str) -> Any:
        return self.call(
            "create_payment_intent",
            self.client.v1.payment_intents.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )

    def retrieve_payment_intent(self, intent_id: str, *, expand: list[str]) -> Any:
        return self.call(
            "retrieve_payment_intent",
            self.client.v1.payment_intents.retrieve,
            intent_id,
            params={"expand": expand},
        )

    def cancel_payment_intent(self, intent_id: str) -> Any:
        return self.call("cancel_payment_intent", self.client.v1.payment_intents.cancel, intent_id)

    # ---- Checkout Sessions ----

    def create_checkout_session(self, params: dict[str, Any], *, idempotency_key: str) -> Any:
        return self.call(
            "create_checkout_session",
            self.client.v1.checkout.sessions.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )

    def retrieve_checkout_session(self, session_id: str, *, expand: list[str] | None = None) -> Any:
        sessions = self.client.v1.checkout.sessions
        if expand is None:
            return self.call("retrieve_checkout_session", sessions.retrieve, session_id)
        return self.call(
            "retrieve_checkout_session",
            sessions.retrieve,
            session_id,
            params={"expand": expand},
        )

    def expire_checkout_session(self, session_id: str) -> Any:
        return self.call(
            "expire_checkout_session", self.client.v1.checkout.sessions.expire, session_id
        )

    # ---- refunds ----

    def create_refund(self, params: dict[str, Any], *, idempotency_key: str) -> Any:
        return self.call(
            "create_refund",
            self.client.v1.refunds.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )

    def retrieve_refund(self, refund_id: str) -> Any:
        return self.call("retrieve_refund", self.client.v1.refunds.retrieve, refund_id)

    def list_refunds(self, payment_intent_id: str) -> list[Any]:
        """Every refund of a PaymentIntent, newest first, reading every page."""

        def read_all() -> list[Any]:
            page = self.client.v1.refunds.list(
                params={"payment_intent": payment_intent_id, "limit": REFUND_PAGE_SIZE}
            )
            refunds = []
            for refund in page.auto_paging_iter():
                refunds.append(refund)
                if len(refunds) > REFUND_MAX:
                    raise ProviderBadResponse(
                        f"PaymentIntent {payment_intent_id} has more than {REFUND_MAX} refunds.",
                        channel=CHANNEL,
                        operation="list_refunds",
                    )
            return refunds

        return self.call("list_refunds", read_all)

    # ---- webhook endpoints ----

    def create_webhook_endpoint(self, params: dict[str, Any], *, idempotency_key: str) -> Any:
        return self.call(
            "create_webhook_endpoint",
            self.client.v1.webhook_endpoints.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )

    # ---- the one way in ----

    def call(self, operation: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the SDK; its errors become project errors, its result plain data."""
        if not self.secret_key:
            raise ProviderRequestRefused(
                "STRIPE_SECRET_KEY is not set.", channel=CHANNEL, operation=operation
            )
        try:
            result = function(*args, **kwargs)
        except stripe.StripeError as exc:
            raise translate(exc, operation) from exc
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # The SDK could not build an object from what it was given.
            raise unreadable(exc, operation) from exc
        answer = plain(result)
        if isinstance(result, stripe.StripeObject) and not isinstance(answer, dict):
            raise ProviderBadResponse(
                "Stripe answered something other than an object.",
                channel=CHANNEL,
                operation=operation,
            )
        return answer
