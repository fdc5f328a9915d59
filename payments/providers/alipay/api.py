"""Calls to Alipay's open platform gateway, the one module that speaks HTTP to it.

A call is a form POST of the common parameters (``app_id``, ``method``, ``timestamp``,
``biz_content``...) signed with the application's key; the answer's
``<method>_response`` object must carry Alipay's valid signature before anything in it
is believed. Errors come back as this project's ProviderError subclasses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import requests

from payments.providers.alipay import sign
from payments.providers.alipay.config import CHANNEL, AlipayConfig
from payments.providers.base import (
    ProviderBadResponse,
    ProviderRequestRefused,
    ProviderUnavailable,
)

logger = logging.getLogger("payments.providers.alipay")

# Seconds: connect, read.
TIMEOUT = (10.0, 30.0)
SUCCESS = "10000"
# Codes that say Alipay could not do it now: the same request may pass later.
BUSY = frozenset({"20000", "20001"})
BUSY_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "ACQ.REFUND_FEE_ERROR_RETRY", "aop.SYSTEM_ERROR"})
MESSAGE_MAX = 500
# Alipay reads and writes times in China Standard Time.
CHINA = timezone(timedelta(hours=8), "CST")

_session = requests.Session()


class Refused(ProviderRequestRefused):
    """A signed refusal: ``sub_code`` (ACQ.TRADE_NOT_EXIST...) says why."""

    @property
    def sub_code(self) -> str:
        return str(self.details.get("provider_code") or "")


def china_time(moment: datetime | None = None) -> str:
    return (moment or datetime.now(tz=CHINA)).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def signed_params(
    config: AlipayConfig, method: str, biz: Mapping[str, Any], **extra: str
) -> dict[str, str]:
    """The request's parameters, signed."""
    _require(config)
    params = {
        "app_id": config.app_id,
        "method": method,
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": china_time(),
        "version": "1.0",
        "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        **{name: value for name, value in extra.items() if value},
    }
    params["sign"] = sign.sign(config.signing_key, sign.content(params))
    return params


def page_url(config: AlipayConfig, method: str, biz: Mapping[str, Any], **extra: str) -> str:
    """The signed URL a buyer's browser opens (page and phone payments): nothing is
    called until the buyer opens it."""
    params = signed_params(config, method, biz, **extra)
    separator = "&" if "?" in config.gateway_url else "?"
    return f"{config.gateway_url}{separator}{urlencode(params)}"


def call(config: AlipayConfig, method: str, biz: Mapping[str, Any], **extra: str) -> dict:
    """POST one API call; the verified ``<method>_response`` object when its code is
    10000. A signed refusal raises ``Refused``; an outage or a busy answer
    ``ProviderUnavailable``; an unsigned or unreadable answer ``ProviderBadResponse``."""
    params = signed_params(config, method, biz, **extra)
    operation = method.removeprefix("alipay.")
    try:
        response = _session.post(
            config.gateway_url,
            data=params,
            timeout=TIMEOUT,
            headers={"Accept": "application/json"},
        )
    except requests.RequestException as exc:
        logger.warning("Alipay %s failed: %s", operation, type(exc).__name__)
        raise ProviderUnavailable(
            "Alipay could not be reached.", channel=CHANNEL, operation=operation
        ) from None
    if response.status_code >= 500:
        raise ProviderUnavailable(
            f"Alipay answered HTTP {response.status_code}.",
            channel=CHANNEL,
            operation=operation,
            http_status=response.status_code,
        )
    response.encoding = "utf-8"
    return _verified(config, method, response.text, operation)


def _verified(config: AlipayConfig, method: str, body: str, operation: str) -> dict:
    key_name = method.replace(".", "_") + "_response"
    found = sign.signed_object(body, key_name) or sign.signed_object(body, "error_response")
    if found is None:
        raise ProviderBadResponse(
            "Alipay answered something unreadable.", channel=CHANNEL, operation=operation
        )
    text, answer = found
    signature = _signature(body)
    signed = bool(signature) and sign.verify(config.verifying_key, text, signature)
    code = str(answer.get("code") or "")
    details = {
        "operation": operation,
        "provider_code": str(answer.get("sub_code") or code),
        "provider_message": str(answer.get("sub_msg") or answer.get("msg") or "")[:MESSAGE_MAX],
    }
    if code == SUCCESS:
        if not signed:
            raise ProviderBadResponse(
                "Alipay's answer does not carry Alipay's signature.", channel=CHANNEL, **details
            )
        return answer
    logger.warning(
        "Alipay %s refused: %s %s",
        operation,
        code,
        details["provider_code"],
        extra={"channel": CHANNEL, "operation": operation},
    )
    if code in BUSY or details["provider_code"] in BUSY_SUB_CODES:
        raise ProviderUnavailable(
            f"Alipay is busy: {details['provider_message'] or code}.", channel=CHANNEL, **details
        )
    if not signed:
        # An unsigned refusal (a bad app id or signature is answered so) proves nothing
        # about the trade: it is a refusal, never news of the payment.
        details["provider_code"] = f"unsigned:{details['provider_code']}"
    raise Refused(
        f"Alipay refused the request: {details['provider_message'] or code}.",
        channel=CHANNEL,
        **details,
    )


def _signature(body: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    value = parsed.get("sign") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else ""


def _require(config: AlipayConfig) -> None:
    if not config.configured:
        raise ProviderRequestRefused(
            "Alipay is not configured: set ALIPAY_APP_ID, ALIPAY_APP_PRIVATE_KEY and "
            "ALIPAY_PUBLIC_KEY, or give the creator's integration its keys.",
            channel=CHANNEL,
            code="provider_not_configured",
        )
    try:
        config.signing_key  # noqa: B018 - read once, cached
        config.verifying_key  # noqa: B018
    except sign.KeyInvalid as exc:
        raise ProviderRequestRefused(
            f"Alipay's keys cannot be read: {exc}.", channel=CHANNEL, code="provider_not_configured"
        ) from None
