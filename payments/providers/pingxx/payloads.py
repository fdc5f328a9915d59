"""Ping++ objects (charges, refunds) as PaymentState and RefundState, and what a
client needs from a charge to pay it (credential, QR code URL)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    PaymentState,
    RefundState,
)
from payments.providers.payloads import (
    Malformed,
    currency,
    identifier,
    integer,
    metadata,
    text,
    timestamp,
)
from payments.providers.payloads import livemode as livemode_of

# The credential field holding the QR code URL, for the QR methods.
QR_FIELDS = {"alipay_qr": "alipay_qr", "wx_pub_qr": "wx_pub_qr"}
# The credential field holding the page a phone's browser is sent to, for H5 methods.
REDIRECT_FIELDS = {"wx_wap": "wx_wap"}

REFUND_STATUSES = {
    "pending": REFUND_PENDING,
    "succeeded": REFUND_SUCCEEDED,
    "failed": REFUND_FAILED,
}


def payment_state_of(charge: Mapping[str, Any], *, now: float | None = None) -> PaymentState:
    """The normalised state of a Ping++ charge object."""
    charge_id = identifier(charge, "charge")
    now = time.time() if now is None else now
    expire = charge.get("time_expire")
    expired = isinstance(expire, int) and not isinstance(expire, bool) and 0 < expire <= now
    if charge.get("paid") is True:
        state = PAYMENT_SUCCEEDED
    elif expired or charge.get("reversed") is True:
        state = PAYMENT_CLOSED
    elif charge.get("failure_code"):
        state = PAYMENT_FAILED
    else:
        state = PAYMENT_PENDING
    return PaymentState(
        provider_payment_id=charge_id,
        state=state,
        amount=integer(charge, "amount"),
        currency=currency(charge),
        attempt_bid=text(charge, "order_no"),
        order_bid=str(metadata(charge).get("order_bid") or ""),
        livemode=livemode_of(charge),
        app_id=text(charge, "app"),
        paid_at=timestamp(charge, "time_paid"),
        transaction_no=text(charge, "transaction_no"),
        failure_code=text(charge, "failure_code"),
        failure_message=text(charge, "failure_msg"),
        raw=dict(charge),
    )


def refund_state_of(
    refund: Mapping[str, Any], *, livemode: bool | None = None, default_status: str = ""
) -> RefundState:
    """The normalised state of a Ping++ refund object."""
    refund_id = identifier(refund, "refund")
    status = text(refund, "status") or default_status
    if status not in REFUND_STATUSES:
        raise Malformed(f"refund has an unknown status {status!r}")
    charge_id = text(refund, "charge")
    if not charge_id:
        raise Malformed("refund names no charge")
    return RefundState(
        provider_refund_id=refund_id,
        provider_payment_id=charge_id,
        state=REFUND_STATUSES[status],
        amount=integer(refund, "amount"),
        currency=(text(refund, "currency") or "cny").lower(),
        refund_bid=str(metadata(refund).get("refund_bid") or ""),
        livemode=livemode_of(refund) if livemode is None else livemode,
        failure_code=text(refund, "failure_code"),
        failure_message=text(refund, "failure_msg"),
        raw=dict(refund),
    )


def client_data_of(method: str, charge: Any) -> dict[str, Any]:
    """What a client needs to pay a charge: its credential; for QR methods the URL to
    draw; for H5 methods the page to send the browser to (``redirect_url``)."""
    credential = charge.get("credential") if isinstance(charge, Mapping) else None
    credential = dict(credential) if isinstance(credential, Mapping) else {}
    qr_url = credential.get(QR_FIELDS.get(method or "", ""))
    data = {"credential": credential, "qr_url": qr_url if isinstance(qr_url, str) else ""}
    page = credential.get(REDIRECT_FIELDS.get(method or "", ""))
    if isinstance(page, str) and page.startswith("https://"):
        data["redirect_url"] = page
    return data
