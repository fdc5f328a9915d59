"""WeChat Pay's JSON (transactions, refunds) as PaymentState and RefundState, and what
is sent to create them.

Our attempt bid is the merchant order number (``out_trade_no``) and the payment id the
services keep; WeChat's ``transaction_id`` is the transaction number. Our refund bid is
the merchant refund number (``out_refund_no``) and also the refund id the services keep,
since WeChat Pay queries a refund only by it; WeChat's ``refund_id`` stays in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    CurrencyNotSupported,
    PaymentRequest,
    PaymentState,
    RefundState,
)
from payments.providers.payloads import Malformed, text
from payments.providers.wechatpay.config import CHANNEL

# trade_state: REFUND means it was paid (refunds are followed on their own).
TRADE_STATES = {
    "SUCCESS": PAYMENT_SUCCEEDED,
    "REFUND": PAYMENT_SUCCEEDED,
    "NOTPAY": PAYMENT_PENDING,
    "USERPAYING": PAYMENT_PENDING,
    "ACCEPT": PAYMENT_PENDING,
    "CLOSED": PAYMENT_CLOSED,
    "REVOKED": PAYMENT_CLOSED,
    "PAYERROR": PAYMENT_FAILED,
}
REFUND_STATUSES = {
    "SUCCESS": REFUND_SUCCEEDED,
    "PROCESSING": REFUND_PENDING,
    "ABNORMAL": REFUND_FAILED,
    "CLOSED": REFUND_FAILED,
}
# Our method names (those of Ping++) and WeChat Pay's kinds of transaction.
TRADE_TYPES = {"wx_pub_qr": "native", "wx_pub": "jsapi", "wx_wap": "h5"}
DESCRIPTION_MAX = 127
ATTACH_MAX = 128
REASON_MAX = 80
CHINA = timezone(timedelta(hours=8))


# ---- what is sent ----


def check_currency(code: str) -> None:
    if (code or "").lower() != "cny":
        raise CurrencyNotSupported(
            f"WeChat Pay takes only CNY, not {code!r}.", channel=CHANNEL, currency=code
        )


def transaction_params(
    request: PaymentRequest, *, app_id: str, mch_id: str, notify_url: str
) -> dict[str, Any]:
    """The body of a Native, JSAPI or H5 order (without payer or scene_info)."""
    description = (request.subject or request.body or request.order_bid).strip()
    params: dict[str, Any] = {
        "appid": app_id,
        "mchid": mch_id,
        "description": clip(description, DESCRIPTION_MAX),
        "out_trade_no": request.attempt_bid,
        "notify_url": notify_url,
        "amount": {"total": request.amount, "currency": "CNY"},
        "attach": clip(request.order_bid, ATTACH_MAX),
    }
    if request.expires_at is not None:
        params["time_expire"] = rfc3339(request.expires_at)
    return params


def refund_params(
    *, out_trade_no: str, out_refund_no: str, reason: str, notify_url: str, amount: int, total: int
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "out_trade_no": out_trade_no,
        "out_refund_no": out_refund_no,
        "notify_url": notify_url,
        "amount": {"refund": amount, "total": total, "currency": "CNY"},
    }
    if reason.strip():
        params["reason"] = clip(reason.strip(), REASON_MAX)
    return params


def clip(value: str, limit: int) -> str:
    """At most ``limit`` bytes of UTF-8, whole characters only: the strictest reading of
    WeChat Pay's string lengths (characters or bytes), which holds under either."""
    return value.encode("utf-8")[:limit].decode("utf-8", "ignore")


def rfc3339(moment: datetime) -> str:
    """An aware time as WeChat Pay writes it: 2026-12-07T19:00:00+08:00."""
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


# ---- what comes back ----


def _amount(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("amount")
    return value if isinstance(value, Mapping) else {}


def _integer(obj: Mapping[str, Any], key: str, what: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{what} has no integer amount.{key}")
    return value


def _time(obj: Mapping[str, Any], key: str) -> datetime | None:
    value = text(obj, key)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(f"{key} is not an RFC 3339 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA)


def payment_state_of(transaction: Any) -> PaymentState:
    """The normalised state of a WeChat Pay transaction (query answer, or the resource
    of a TRANSACTION.SUCCESS notification)."""
    if not isinstance(transaction, Mapping):
        raise Malformed("expected a transaction object")
    out_trade_no = text(transaction, "out_trade_no")
    if not out_trade_no:
        raise Malformed("transaction has no out_trade_no")
    trade_state = text(transaction, "trade_state")
    if trade_state not in TRADE_STATES:
        raise Malformed(f"transaction has an unknown trade_state {trade_state!r}")
    state = TRADE_STATES[trade_state]
    amount = _amount(transaction)
    if state == PAYMENT_SUCCEEDED:
        total = _integer(amount, "total", "transaction")
        currency = text(amount, "currency")
        if not currency or not text(transaction, "transaction_id"):
            raise Malformed("a paid transaction has no currency or transaction_id")
    else:
        # An unpaid order may be answered without its amount: nothing was paid.
        total = amount.get("total") if isinstance(amount.get("total"), int) else 0
        currency = text(amount, "currency") or "CNY"
    failed = state == PAYMENT_FAILED
    return PaymentState(
        provider_payment_id=out_trade_no,
        state=state,
        amount=total,
        currency=currency.lower(),
        attempt_bid=out_trade_no,
        order_bid=text(transaction, "attach"),
        app_id=text(transaction, "appid"),
        paid_at=_time(transaction, "success_time") if state == PAYMENT_SUCCEEDED else None,
        transaction_no=text(transaction, "transaction_id"),
        failure_code=trade_state if failed else "",
        failure_message=text(transaction, "trade_state_desc") if failed else "",
        raw=dict(transaction),
    )


def refund_state_of(refund: Any) -> RefundState:
    """The normalised state of a WeChat Pay refund (an answer, whose word is ``status``,
    or the resource of a REFUND.* notification, whose word is ``refund_status``)."""
    if not isinstance(refund, Mapping):
        raise Malformed("expected a refund object")
    out_refund_no, out_trade_no = text(refund, "out_refund_no"), text(refund, "out_trade_no")
    if not out_refund_no or not out_trade_no:
        raise Malformed("refund has no out_refund_no or out_trade_no")
    status = text(refund, "status") or text(refund, "refund_status")
    if status not in REFUND_STATUSES:
        raise Malformed(f"refund has an unknown status {status!r}")
    amount = _amount(refund)
    failed = REFUND_STATUSES[status] == REFUND_FAILED
    return RefundState(
        provider_refund_id=out_refund_no,
        provider_payment_id=out_trade_no,
        state=REFUND_STATUSES[status],
        amount=_integer(amount, "refund", "refund"),
        # Refund notifications carry no currency: WeChat Pay refunds in CNY.
        currency=(text(amount, "currency") or "CNY").lower(),
        refund_bid=out_refund_no,
        failure_code=status if failed else "",
        failure_message=f"WeChat Pay refund {status.lower()}" if failed else "",
        raw=dict(refund),
    )
