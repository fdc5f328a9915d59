"""Values and helpers the Ping++ provider tests share."""

from __future__ import annotations

import json
import os

from payments.providers.base import PaymentRequest, RefundRequest

EXTRAS = {
    "alipay_qr": {},
    "wx_pub_qr": {"product_id": "prod0123456789abcdef0123456789ab"},
    "alipay_pc_direct": {"success_url": "https://example.com/paid"},
    "wx_pub": {"open_id": "o_wechat_user"},
    "wx_wap": {"result_url": "https://example.com/paid"},
}
QR_PREFIXES = {"alipay_qr": "https://qr.alipay.com/", "wx_pub_qr": "weixin://wxpay/bizpayurl"}


def payment_request(method: str = "alipay_qr", **overrides) -> PaymentRequest:
    values = {
        "channel": "pingxx",
        "method": method,
        "order_bid": "0123456789abcdef0123456789abcdef",
        "attempt_bid": os.urandom(16).hex(),
        "user_bid": "user0123456789abcdef0123456789ab",
        "product_bid": "prod0123456789abcdef0123456789ab",
        "amount": 1990,
        "currency": "cny",
        "subject": "Python 入门",
        "body": "A course",
        "client_ip": "203.0.113.7",
        "success_url": "https://example.com/paid",
        "open_id": "o_wechat_user",
    }
    return PaymentRequest(**{**values, **overrides})


def sent(double, index: int = -1) -> dict:
    return json.loads(double.requests[index]["body"])


def paid_charge(pingxx, double, amount: int = 1990) -> str:
    charge_id = pingxx.start_payment(payment_request(amount=amount)).provider_payment_id
    double.pay(charge_id)
    return charge_id


def refund_request(charge_id: str, refund_bid: str, amount: int = 500) -> RefundRequest:
    return RefundRequest(
        channel="pingxx",
        refund_bid=refund_bid,
        provider_payment_id=charge_id,
        amount=amount,
        currency="cny",
        reason="课程不满意 🙁",
    )


def signed_headers(signature: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Pingplusplus-Signature": signature}
