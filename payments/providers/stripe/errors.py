"""Stripe's SDK errors, and answers this package cannot read, as ProviderError subclasses."""

from __future__ import annotations

import logging
from typing import Any

import stripe

from payments.providers.base import (
    ProviderBadResponse,
    ProviderError,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from payments.providers.payloads import answer_reader

logger = logging.getLogger("payments.providers.stripe")

CHANNEL = "stripe"

# How much of a provider message goes into an error's details.
MESSAGE_MAX = 500


def translate(exc: stripe.StripeError, operation: str) -> ProviderError:
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


def unreadable(exc: Exception, operation: str) -> ProviderBadResponse:
    """The SDK could not build an object from what Stripe answered."""
    return ProviderBadResponse(
        f"Stripe answered something unreadable: {exc}.", channel=CHANNEL, operation=operation
    )


# ``build(obj)``, where an object lacking what it reads is a bad response.
read_answer = answer_reader("Stripe", CHANNEL)
