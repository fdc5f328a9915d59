"""Orders, started payments and attempts in the shapes the old frontend reads
(``order.ts`` and the old DTOs: ``AICourseBuyRecordDTO``, ``BuyRecordDTO``, the payment
details of ``get_payment_details``).

``course_id`` is the product's ``product_bid`` (the platform's ``shifu_bid``); ``status``
is the old number (``codes.STATUS_CODES``); prices are decimal strings in major units.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from orders.legacy_api.channels import old_channel
from orders.legacy_api.codes import STATUS_DESCRIPTIONS, legacy_status
from orders.models import Order
from orders.selectors import order_price_lines
from orders.services import PaymentStarted
from payments.models import NATIVE_ATTEMPTS
from payments_project.db import parse_legacy_object
from payments_project.money import display

# The old price items' names (its en-US texts), by the kind of line.
ITEM_NAMES = {"price": "Product", "promotion": "Promotion", "coupon": "Coupon"}
BASE_PRICE = "Base price"


def old_price(amount: Decimal) -> str:
    """A price as the old order answers wrote it: two places, ``.00`` left off
    (``"19.90"``, ``"299"``, ``"0"``)."""
    text = display(amount)
    return text.removesuffix(".00")


def order_snapshot(order: Order, discount_lines: list[dict] | None = None) -> dict[str, Any]:
    """An order as ``init-order``, ``query-order`` and ``apply-discount`` answer it.
    ``value_to_pay`` is what the buyer pays (list price less discounts); ``price_item``
    lists the list price, then each discount as a positive amount."""
    status = legacy_status(order.status)
    items = []
    for line in order_price_lines(order, discount_lines):
        discount = line["kind"] != "price"
        items.append(
            {
                "name": ITEM_NAMES.get(line["kind"], line["kind"]),
                "price_name": line["label"] if discount else BASE_PRICE,
                "price": old_price(abs(Decimal(line["amount"] or 0))),
                "is_discount": discount,
            }
        )
    return {
        "order_id": order.order_bid,
        "user_id": order.user_bid,
        "course_id": order.product_bid,
        "price": old_price(order.payable_price),
        "status": status,
        "status_desc": STATUS_DESCRIPTIONS[status],
        "discount": old_price(order.discount_price),
        "value_to_pay": old_price(order.due_price),
        "price_item": items,
    }


def pay_result(started: PaymentStarted) -> dict[str, Any]:
    """A started payment as ``reqiure-to-pay`` answers it (``PayUrlResponse``)."""
    order, attempt, data = started.order, started.attempt, started.client_data
    if started.channel == "stripe":
        payload = {
            "mode": started.method,
            "client_secret": data.get("client_secret", ""),
            "checkout_session_url": data.get("checkout_url", ""),
            "checkout_session_id": attempt.checkout_session_id or "",
            "payment_intent_id": attempt.payment_intent_id or "",
            "latest_charge_id": attempt.latest_charge_id or "",
        }
        if data.get("publishable_key"):
            payload["publishable_key"] = data["publishable_key"]
        qr_url = payload["checkout_session_url"] or payload["client_secret"]
    elif started.channel == "pingxx":
        qr_url = data.get("qr_url") or ""
        payload = {"qr_url": qr_url, "credential": dict(data.get("credential") or {})}
    else:  # the sandbox: its confirm page stands where a QR code would
        payload = dict(data)
        qr_url = data.get("confirm_url", "")
    return {
        "order_id": order.order_bid,
        "user_id": order.user_bid,
        "price": display(order.due_price),
        "channel": old_channel(started.channel, started.method),
        "qr_url": qr_url,
        "payment_channel": started.channel,
        "payment_payload": payload,
        "status": legacy_status(order.status),
    }


def payment_detail(order: Order, attempt: Any) -> dict[str, Any]:
    """The order's latest attempt as ``payment-detail`` and the syncs answer it
    (``PaymentDetailResponse``); ``status`` is the attempt's (0 unpaid, 1 paid,
    2 refunded, 3 closed, 4 failed), as in the old attempt tables."""
    common = {
        "payment_channel": order.payment_channel,
        "order_bid": order.order_bid,
        "course_id": order.product_bid,
        "status": attempt.status,
    }
    if order.payment_channel == "stripe":
        return {
            **common,
            "payment_intent_id": attempt.payment_intent_id or "",
            "checkout_session_id": attempt.checkout_session_id or "",
            "latest_charge_id": attempt.latest_charge_id or "",
            "receipt_url": attempt.receipt_url,
            "payment_method": attempt.payment_method,
            "metadata": _mapping(attempt.metadata),
            "payment_intent_object": _mapping(attempt.payment_intent_object),
            "checkout_session_object": _mapping(attempt.checkout_session_object),
        }
    if order.payment_channel == "pingxx":
        return {
            **common,
            "charge_id": attempt.charge_id,
            "transaction_no": attempt.transaction_no,
            "amount": attempt.amount,
            "currency": attempt.currency,
            "channel": attempt.channel,
            "extra": _mapping(parse_legacy_object(attempt.extra)),
            "charge_object": _mapping(attempt.charge),
        }
    if order.payment_channel in NATIVE_ATTEMPTS:
        return {
            **common,
            "provider_attempt_id": attempt.provider_attempt_id,
            "transaction_id": attempt.transaction_id,
            "raw_status": attempt.raw_status,
            "amount": attempt.amount,
            "currency": attempt.currency,
            "channel": attempt.channel,
            "metadata": _mapping(attempt.metadata),
            "raw_request": _mapping(attempt.raw_request),
            "raw_response": _mapping(attempt.raw_response),
            "raw_notification": _mapping(attempt.raw_notification),
        }
    # The sandbox (development only), which order.ts does not know.
    return {
        **common,
        "attempt_bid": attempt.attempt_bid,
        "provider_payment_id": attempt.provider_payment_id,
        "amount": attempt.amount,
        "currency": attempt.currency_code,
        "channel": attempt.method_name,
    }


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}
