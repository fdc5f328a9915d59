"""Ping++'s SDK errors, and answers this package cannot read, as ProviderError subclasses."""

from __future__ import annotations

import logging
from typing import Any

from pingpp import error as pingpp_error

from payments.providers.base import (
    ProviderBadResponse,
    ProviderError,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from payments.providers.payloads import answer_reader

logger = logging.getLogger("payments.providers.pingxx")

CHANNEL = "pingxx"

# How much of a provider message goes into an error's details.
MESSAGE_MAX = 500

# The SDK's base error, for the one module that calls it.
SdkError = pingpp_error.PingppError


def translate(exc: pingpp_error.PingppError, operation: str) -> ProviderError:
    """The project error for an SDK error: unavailable, refused, or unreadable."""
    status = exc.http_status if isinstance(exc.http_status, int) else None
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error_object = body.get("error") if isinstance(body.get("error"), dict) else None
    details: dict[str, Any] = {
        "operation": operation,
        "http_status": status,
        "provider_message": (str(exc) or "")[:MESSAGE_MAX],
    }
    # Not "code": ServiceError takes that keyword as the error's own code.
    provider_code = getattr(exc, "code", None) or (error_object or {}).get("code")
    if provider_code:
        details["provider_code"] = str(provider_code)
    if error_object and error_object.get("type"):
        details["provider_error_type"] = str(error_object["type"])
    if getattr(exc, "param", None):
        details["param"] = str(exc.param)
    logger.warning(
        "Ping++ %s failed: %s (HTTP %s, code %s)",
        operation,
        type(exc).__name__,
        status,
        details.get("provider_code", "-"),
        extra={"channel": CHANNEL, "operation": operation, "http_status": status},
    )
    refused = (
        pingpp_error.InvalidRequestError,
        pingpp_error.AuthenticationError,
        pingpp_error.ChannelError,
    )
    if isinstance(exc, pingpp_error.RateLimitError):
        # Too many requests: nothing was done, and the same request may pass later.
        return ProviderUnavailable("Ping++ is rate limiting requests.", channel=CHANNEL, **details)
    if isinstance(exc, pingpp_error.APIConnectionError):
        return ProviderUnavailable("Ping++ could not be reached.", channel=CHANNEL, **details)
    if isinstance(exc, refused):
        message = details["provider_message"] or "no reason given"
        return ProviderRequestRefused(
            f"Ping++ refused the request: {message}", channel=CHANNEL, **details
        )
    if isinstance(exc, pingpp_error.APIError) and (status is None or status >= 500):
        return ProviderUnavailable(
            f"Ping++ answered HTTP {status or 'without a status'}.", channel=CHANNEL, **details
        )
    if isinstance(exc, pingpp_error.APIError) and error_object and 400 <= (status or 0) < 500:
        return ProviderRequestRefused(
            f"Ping++ refused the request: {details['provider_message']}",
            channel=CHANNEL,
            **details,
        )
    return ProviderBadResponse("Ping++ answered something unreadable.", channel=CHANNEL, **details)


# ``build(obj)``, where an object lacking what it reads is a bad response.
read_answer = answer_reader("Ping++", CHANNEL)
