"""What the checkout pages offer a buyer, and what they tell them about an order.

A button per way to pay, named as buyers know it ("Alipay (QR code)", "Card"), only
where the channel takes the product's currency, and only what works on the buyer's
device: a QR code means nothing on the phone that would scan it, so phones are offered
the phone pages (WeChat Pay's H5 ``wx_wap``, Alipay's ``alipay_wap``) instead, and
computers the QR codes and Alipay's desktop page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from orders.models import Order, OrderStatus
from payments import registry
from payments_project.errors import ServiceError

LABELS = {
    "pingxx:alipay_qr": "Alipay (QR code)",
    "pingxx:wx_pub_qr": "WeChat Pay (QR code)",
    "pingxx:alipay_pc_direct": "Alipay",
    "pingxx:wx_wap": "WeChat Pay",
    "stripe:payment_intent": "Card",
    "stripe:checkout_session": "Card (Stripe Checkout)",
    "sandbox:confirm_page": "Sandbox (no money moves)",
    "alipay:alipay_qr": "Alipay (QR code)",
    "alipay:alipay_pc_direct": "Alipay",
    "alipay:alipay_wap": "Alipay",
    "wechatpay:wx_pub_qr": "WeChat Pay (QR code)",
    "wechatpay:wx_wap": "WeChat Pay",
}
# Methods a page cannot offer: wx_pub pays inside WeChat's own browser, with its open id.
NEVER_OFFERED = frozenset({"pingxx:wx_pub", "wechatpay:wx_pub"})
DESKTOP_ONLY = frozenset(
    {
        "pingxx:alipay_qr",
        "pingxx:wx_pub_qr",
        "pingxx:alipay_pc_direct",
        "alipay:alipay_qr",
        "alipay:alipay_pc_direct",
        "wechatpay:wx_pub_qr",
    }
)
PHONE_ONLY = frozenset({"pingxx:wx_wap", "alipay:alipay_wap", "wechatpay:wx_wap"})
_PHONE = re.compile(r"Mobi|Android|iPhone|iPod|Windows Phone", re.IGNORECASE)

# The order page asks how its order stands every POLL_MS, slower each time without news
# (times POLL_BACKOFF, at most POLL_MAX_MS), and stops after POLL_GIVE_UP_MS.
POLL_MS = 2000
POLL_BACKOFF = 1.5
POLL_MAX_MS = 30_000
POLL_GIVE_UP_MS = 30 * 60_000

PAYABLE = (OrderStatus.INIT, OrderStatus.UNPAID)


@dataclass(frozen=True)
class Way:
    value: str  # channel:method, what the buy form posts
    channel: str
    label: str
    currencies: frozenset[str] | None  # what the channel takes; None: any


def on_phone(request: HttpRequest) -> bool:
    return bool(_PHONE.search(request.headers.get("User-Agent", "")))


def ways_to_pay(request: HttpRequest) -> list[Way]:
    """Every enabled channel's methods this device can use, in the channels' order."""
    phone = on_phone(request)
    ways = []
    for channel in registry.enabled_channels():
        try:
            provider = registry.get_provider(channel)
        except (ServiceError, ImproperlyConfigured):  # a misconfigured channel offers none
            continue
        currencies = getattr(provider, "currencies", None)
        for method in provider.methods:
            value = f"{channel}:{method}"
            if value in NEVER_OFFERED or value in (DESKTOP_ONLY if phone else PHONE_ONLY):
                continue
            label = LABELS.get(value, f"{channel} · {method}")
            ways.append(Way(value, channel, label, currencies))
    return ways


def ways_for(currency: str, ways: list[Way]) -> list[Way]:
    """The ways that take ``currency`` (Ping++ takes CNY only, for one)."""
    code = currency.lower()
    return [way for way in ways if way.currencies is None or code in way.currencies]


def order_state(order: Order, attempt) -> str:
    """What the order page shows, and what its poller compares: paid, refunded,
    failed (the latest payment failed), expired, cancelled or waiting."""
    if order.status == OrderStatus.PAID:
        return "paid"
    if order.status in (OrderStatus.REFUNDED, OrderStatus.REVOKED):
        return "refunded"
    if order.status == OrderStatus.TIMEOUT:
        return "expired"
    if order.status == OrderStatus.CANCELLED:
        return "cancelled"
    if attempt is not None and attempt.get_status_display() == "failed":
        return "failed"
    return "waiting"


def way_of(order: Order, attempt) -> str:
    """The ``channel:method`` the order's latest payment used, to pay again the same way
    (the channel's default method when there is no attempt yet)."""
    method = getattr(attempt, "method_name", "") if attempt is not None else ""
    return f"{order.payment_channel}:{method}" if method else order.payment_channel
