"""Alipay's answers and notifications, read into this project's values.

Alipay speaks yuan as decimal text (``"88.88"``) and China Standard Time; these turn
them into minor units and aware datetimes, and raise ``Malformed`` where a required value
is missing or unreadable.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from payments.providers.alipay.api import CHINA
from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    PAYMENT_CLOSED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    PaymentState,
    ProviderEvent,
    RefundState,
)
from payments.providers.payloads import Malformed

CURRENCY = "cny"
PAID = ("TRADE_SUCCESS", "TRADE_FINISHED")
TRADE_STATES = {
    "WAIT_BUYER_PAY": PAYMENT_PENDING,
    "TRADE_SUCCESS": PAYMENT_SUCCEEDED,
    "TRADE_FINISHED": PAYMENT_SUCCEEDED,
    "TRADE_CLOSED": PAYMENT_CLOSED,
}


def yuan(minor: int) -> str:
    """Minor units (fen) as Alipay's amount text."""
    return f"{Decimal(minor) / 100:.2f}"


def fen(obj: Mapping[str, Any], key: str) -> int:
    """Alipay's amount text at ``key`` in minor units; exactly two decimals at most."""
    value = obj.get(key)
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise Malformed(f"{key} is not an amount") from None
    minor = amount * 100
    if not amount.is_finite() or minor != minor.to_integral_value() or amount < 0:
        raise Malformed(f"{key} is not an amount in fen")
    return int(minor)


def china_datetime(obj: Mapping[str, Any], key: str) -> datetime | None:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        return None


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def trade_state(trade: Mapping[str, Any], *, app_id: str = "") -> PaymentState:
    """A trade (a query's answer, or a notification's fields) as a PaymentState.

    A closed trade that was paid (refunded in full since) is reported paid: its refunds
    are followed on their own."""
    out_trade_no = _text(trade, "out_trade_no")
    status = _text(trade, "trade_status")
    if not out_trade_no or status not in TRADE_STATES:
        raise Malformed("a trade without out_trade_no or a known trade_status")
    state = TRADE_STATES[status]
    paid_at = china_datetime(trade, "send_pay_date") or china_datetime(trade, "gmt_payment")
    if state == PAYMENT_CLOSED and paid_at is not None:
        state = PAYMENT_SUCCEEDED
    return PaymentState(
        provider_payment_id=out_trade_no,
        attempt_bid=out_trade_no,
        state=state,
        amount=fen(trade, "total_amount"),
        currency=CURRENCY,
        app_id=app_id or _text(trade, "app_id"),
        paid_at=paid_at if state == PAYMENT_SUCCEEDED else None,
        transaction_no=_text(trade, "trade_no"),
        raw=dict(trade),
    )


def refund_state(answer: Mapping[str, Any], *, out_trade_no: str, refund_bid: str) -> RefundState:
    """A refund query's answer (one out_request_no): Alipay documents a refund as made
    when the answer holds it with ``refund_status`` blank or REFUND_SUCCESS."""
    status = _text(answer, "refund_status")
    return RefundState(
        provider_refund_id=refund_bid,
        provider_payment_id=out_trade_no,
        refund_bid=refund_bid,
        state=REFUND_SUCCEEDED if status in ("", "REFUND_SUCCESS") else REFUND_PENDING,
        amount=fen(answer, "refund_amount"),
        currency=CURRENCY,
        raw=dict(answer),
    )


def notification_event(params: Mapping[str, str]) -> ProviderEvent:
    """A verified asynchronous notification (``trade_status_sync``) as an event.

    One that reports a refund (``out_biz_no`` / ``refund_fee``, sent after a partial or
    full refund, ``refund_fee`` being the trade's refunded total) is kept as ``other``:
    refunds are settled by the refund call's own answer and the refund query, which name
    the refund and its amount."""
    notify_id = _text(params, "notify_id")
    status = _text(params, "trade_status")
    if not notify_id:
        raise Malformed("no notify_id")
    event_type = f"{_text(params, 'notify_type') or 'notify'}.{status or 'unknown'}"
    raw = {name: value for name, value in params.items() if name not in ("sign", "sign_type")}
    common = {"event_id": notify_id, "livemode": None, "raw": raw}
    if params.get("out_biz_no") or params.get("refund_fee"):
        return ProviderEvent(event_type=f"{event_type}.refund", kind=EVENT_OTHER, **common)
    if status not in TRADE_STATES:
        return ProviderEvent(event_type=event_type, kind=EVENT_OTHER, **common)
    payment = trade_state(raw)
    return ProviderEvent(event_type=event_type, kind=EVENT_PAYMENT, payment=payment, **common)
