"""WeChat Pay's answers as data or as ProviderError subclasses.

The SDK answers ``(status, text)`` and raises a plain ``Exception`` (a response whose
signature does not verify) or a requests exception (no answer): ``api`` catches both
and asks this module what they mean. No module here imports the SDK but ``api``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from payments.providers.base import (
    ProviderBadResponse,
    ProviderError,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from payments.providers.payloads import answer_reader
from payments.providers.wechatpay.config import CHANNEL

logger = logging.getLogger("payments.providers.wechatpay")

# How much of a provider message goes into an error's details.
MESSAGE_MAX = 500
# WeChat Pay's codes for "too many requests": nothing was done, the same may pass later.
RATE_LIMITED = frozenset({"FREQUENCY_LIMITED", "FREQUENCY_LIMIT_EXCEED"})


def answer(status: int, text: Any, operation: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer ({} for 204); raises for anything else."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    text = text if isinstance(text, str) else ""
    if 200 <= status < 300:
        if not text.strip():
            return {}
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ProviderBadResponse(
                "WeChat Pay answered something unreadable.",
                channel=CHANNEL,
                operation=operation,
                http_status=status,
            )
        return body
    raise refusal(status, text, operation)


def refusal(status: int, text: str, operation: str) -> ProviderError:
    """The error for a non-2xx answer: WeChat's ``{"code", "message"}`` when it gave one."""
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    details: dict[str, Any] = {"operation": operation, "http_status": status}
    # Not "code": ServiceError takes that keyword as the error's own code.
    if isinstance(body.get("code"), str):
        details["provider_code"] = body["code"]
    message = str(body.get("message") or "")[:MESSAGE_MAX]
    if message:
        details["provider_message"] = message
    logger.warning(
        "WeChat Pay %s failed: HTTP %s, code %s",
        operation,
        status,
        details.get("provider_code", "-"),
        extra={"channel": CHANNEL, "operation": operation, "http_status": status},
    )
    if status >= 500 or status == 429 or details.get("provider_code") in RATE_LIMITED:
        return ProviderUnavailable(
            f"WeChat Pay answered HTTP {status}.", channel=CHANNEL, **details
        )
    if 400 <= status < 500:
        reason = message or details.get("provider_code") or "no reason given"
        return ProviderRequestRefused(
            f"WeChat Pay refused the request: {reason}", channel=CHANNEL, **details
        )
    return ProviderBadResponse(
        f"WeChat Pay answered HTTP {status}, which this service cannot read.",
        channel=CHANNEL,
        **details,
    )


def unreachable(exc: Exception, operation: str) -> ProviderUnavailable:
    """No answer: the connection failed or timed out."""
    logger.warning("WeChat Pay %s: no answer (%s)", operation, type(exc).__name__)
    return ProviderUnavailable(
        f"WeChat Pay could not be reached ({type(exc).__name__}).",
        channel=CHANNEL,
        operation=operation,
    )


def unverified(exc: Exception, operation: str) -> ProviderBadResponse:
    """An answer the SDK would not accept: its signature did not verify, or worse.

    Whatever the answer said is ignored: it may not come from WeChat Pay.
    """
    logger.error("WeChat Pay %s: answer refused by the SDK: %s", operation, exc)
    return ProviderBadResponse(
        f"WeChat Pay's answer could not be verified: {str(exc)[:MESSAGE_MAX]}",
        channel=CHANNEL,
        operation=operation,
    )


def provider_code(exc: ProviderError) -> str:
    return str(exc.details.get("provider_code") or "")


# ``build(obj)``, where an object lacking what it reads is a bad response.
read_answer = answer_reader("WeChat Pay", CHANNEL)
