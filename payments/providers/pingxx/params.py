"""What this service sends Ping++ for a request: the currency it takes, the channel
extras each method needs, and a subject and body within Ping++'s limits."""

from __future__ import annotations

from collections.abc import Sequence

from payments.providers.base import CurrencyNotSupported, PaymentMethodInvalid, PaymentRequest

CHANNEL = "pingxx"

# Ping++'s limits, in characters.
SUBJECT_MAX = 32
BODY_MAX = 128
DESCRIPTION_MAX = 255


def clean_text(text: str, limit: int) -> str:
    """``text`` without characters outside the BMP (emoji), trimmed to ``limit``."""
    kept = "".join(char for char in text if ord(char) <= 0xFFFF).strip()
    return kept[:limit].strip()


def check_currency(currency: str) -> None:
    if (currency or "").lower() != "cny":
        raise CurrencyNotSupported(
            f"Ping++ takes only CNY, not {currency!r}.", channel=CHANNEL, currency=currency
        )


def channel_extra(request: PaymentRequest, methods: Sequence[str]) -> dict[str, str]:
    """The channel extras Ping++ needs for the method; refuses what lacks them."""
    method = request.method
    if method not in methods:
        raise PaymentMethodInvalid(
            f"Ping++ has no method {method!r}; it has {', '.join(methods)}.",
            channel=CHANNEL,
            method=method,
        )
    required = {
        "wx_pub_qr": ("product_id", request.product_bid),
        "alipay_pc_direct": ("success_url", request.success_url),
        "wx_pub": ("open_id", request.open_id),
    }
    if method in required:
        name, value = required[method]
        if not value:
            raise PaymentMethodInvalid(
                f"Ping++ method {method} needs {name}.",
                channel=CHANNEL,
                method=method,
                missing=name,
            )
        return {name: value}
    if method == "wx_wap" and request.success_url:
        return {"result_url": request.success_url}
    return {}


def subject_and_body(request: PaymentRequest) -> tuple[str, str]:
    subject = clean_text(request.subject, SUBJECT_MAX)
    # Ping++ requires a body; the subject stands in for an empty one.
    body = clean_text(request.body, BODY_MAX) or clean_text(request.subject, BODY_MAX)
    return subject, body


def refund_description(reason: str) -> str:
    return clean_text(reason, DESCRIPTION_MAX) or "Refund"
