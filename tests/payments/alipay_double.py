"""A small Alipay open platform gateway on loopback, for driving the Alipay provider.

It checks each request's RSA2 signature with the application's public key and the app
id, keeps trades and refunds in memory, signs its answers with the key of "Alipay"
that the test generated, and signs notifications as Alipay signs them. A precreated
trade exists at Alipay only once its QR code is scanned (``scan``) or paid (``pay``), as
on the real platform; a page payment's once its URL is opened (``open_page``).
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from payments.providers.alipay import sign
from tests.loopback import LoopbackServer

CHINA = timezone(timedelta(hours=8))
PAGE_METHODS = ("alipay.trade.page.pay", "alipay.trade.wap.pay")


def china_now() -> str:
    return datetime.now(tz=CHINA).strftime("%Y-%m-%d %H:%M:%S")


class AlipayDouble(LoopbackServer):
    def __init__(
        self, *, app_id: str, app_public_key: rsa.RSAPublicKey, alipay_key: rsa.RSAPrivateKey
    ) -> None:
        super().__init__()
        self.app_id = app_id
        self.app_public_key = app_public_key
        self.alipay_key = alipay_key
        self.answer_key = alipay_key  # what signs answers: a test may swap in a stranger's
        self.fund_change = "Y"  # "N": refunds are accepted but no money moves yet
        self.trades: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self._failures: list[int | str] = []
        self._trade_lock = threading.Lock()

    @property
    def gateway_url(self) -> str:
        return f"{self.base_url}/gateway.do"

    # ---- test hooks ----

    def fail_next(self, status: int | str = 500, times: int = 1) -> None:
        """The next requests answer HTTP ``status``, or, "busy", Alipay's 20000."""
        with self._lock:
            self._failures += [status] * times

    def open_page(self, url: str) -> dict[str, Any]:
        """A buyer opens a page payment's URL: the trade is created, waiting for payment."""
        params = dict(parse_qsl(urlsplit(url).query))
        self._check_signature(params)
        biz = json.loads(params["biz_content"])
        with self._trade_lock:
            trade = self._new_trade(biz, params)
            trade["created"] = True
            return copy.deepcopy(trade)

    def scan(self, out_trade_no: str) -> None:
        with self._trade_lock:
            self.trades[out_trade_no]["created"] = True

    def pay(self, out_trade_no: str) -> dict[str, Any]:
        with self._trade_lock:
            trade = self.trades[out_trade_no]
            trade.update(created=True, trade_status="TRADE_SUCCESS", send_pay_date=china_now())
            return copy.deepcopy(trade)

    def notification(
        self, out_trade_no: str, *, key: rsa.RSAPrivateKey | None = None, **fields: str
    ) -> bytes:
        """A trade_status_sync notification of the trade as it is, signed (by ``key``,
        Alipay's by default); ``fields`` override or add fields before signing."""
        with self._trade_lock:
            trade = copy.deepcopy(self.trades[out_trade_no])
        params = {
            "notify_time": china_now(),
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "charset": "utf-8",
            "version": "1.0",
            "app_id": self.app_id,
            "out_trade_no": out_trade_no,
            "trade_no": trade["trade_no"],
            "trade_status": trade["trade_status"],
            "total_amount": trade["total_amount"],
            "subject": trade["subject"],
            "gmt_create": trade["gmt_create"],
        }
        if trade.get("send_pay_date"):
            params["gmt_payment"] = trade["send_pay_date"]
        params.update(fields)
        params = {name: value for name, value in params.items() if value is not None}
        params["sign_type"] = "RSA2"
        params["sign"] = sign.sign(key or self.alipay_key, sign.content(params))
        return urlencode(params).encode()

    # ---- the gateway ----

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(body or urlsplit(handler.path).query, keep_blank_values=True))
        self.requests.append({"method": params.get("method", ""), "params": params})
        if isinstance(failure, int):
            self._send(handler, failure, b"<html>gateway error</html>", "text/html")
            return
        api_method = params.get("method", "")
        key_name = api_method.replace(".", "_") + "_response"
        if failure == "busy":
            answer = {"code": "20000", "msg": "Service Currently Unavailable"}
        elif not self._check_signature(params):
            answer = {
                "code": "40002",
                "msg": "Invalid Arguments",
                "sub_code": "isv.invalid-signature",
            }
            self._answer(handler, "error_response", answer, signed=False)
            return
        else:
            biz = json.loads(params.get("biz_content") or "{}")
            with self._trade_lock:
                answer = self._dispatch(api_method, biz, params)
        self._answer(handler, key_name, answer)

    def _check_signature(self, params: dict[str, str]) -> bool:
        return (
            params.get("app_id") == self.app_id
            and params.get("sign_type") == "RSA2"
            and sign.verify(self.app_public_key, sign.content(params), params.get("sign", ""))
        )

    def _answer(self, handler, key_name: str, answer: dict, *, signed: bool = True) -> None:
        inner = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        document = f'{{"{key_name}":{inner}'
        if signed:
            document += f',"sign":"{sign.sign(self.answer_key, inner)}"'
        document += "}"
        self._send(handler, 200, document.encode(), "application/json;charset=utf-8")

    @staticmethod
    def _send(handler, status: int, body: bytes, content_type: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _new_trade(self, biz: dict, params: dict) -> dict[str, Any]:
        out_trade_no = biz["out_trade_no"]
        trade = self.trades.get(out_trade_no)
        if trade is None:
            trade = self.trades[out_trade_no] = {
                "out_trade_no": out_trade_no,
                "trade_no": "2026" + secrets.token_hex(12),
                "total_amount": biz["total_amount"],
                "subject": biz["subject"],
                "trade_status": "WAIT_BUYER_PAY",
                "gmt_create": china_now(),
                "time_expire": biz.get("time_expire", ""),
                "notify_url": params.get("notify_url", ""),
                "created": False,
                "refunds": {},
            }
        return trade

    def _dispatch(self, api_method: str, biz: dict, params: dict) -> dict[str, Any]:
        ok = {"code": "10000", "msg": "Success"}
        out_trade_no = biz.get("out_trade_no", "")
        trade = self.trades.get(out_trade_no)
        if api_method == "alipay.trade.precreate":
            if trade is not None and trade["total_amount"] != biz["total_amount"]:
                return _refusal("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            if trade is not None and trade["trade_status"] != "WAIT_BUYER_PAY":
                return _refusal("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            trade = self._new_trade(biz, params)
            return {
                **ok,
                "out_trade_no": out_trade_no,
                "qr_code": f"https://qr.alipay.com/{out_trade_no}",
            }
        if trade is None or not trade["created"]:
            if api_method == "alipay.trade.fastpay.refund.query":
                return {**ok, "out_trade_no": out_trade_no}
            return _refusal("ACQ.TRADE_NOT_EXIST", "交易不存在")
        if api_method == "alipay.trade.query":
            fields = {
                k: trade[k] for k in ("out_trade_no", "trade_no", "trade_status", "total_amount")
            }
            if trade.get("send_pay_date"):
                fields["send_pay_date"] = trade["send_pay_date"]
            return {**ok, **fields, "buyer_pay_amount": trade["total_amount"]}
        if api_method == "alipay.trade.close":
            if trade["trade_status"] != "WAIT_BUYER_PAY":
                return _refusal("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            trade["trade_status"] = "TRADE_CLOSED"
            return {**ok, "out_trade_no": out_trade_no, "trade_no": trade["trade_no"]}
        if api_method == "alipay.trade.refund":
            return self._refund(trade, biz, ok)
        if api_method == "alipay.trade.fastpay.refund.query":
            refund = trade["refunds"].get(biz.get("out_request_no", ""))
            if refund is None or not refund["done"]:
                return {**ok, "out_trade_no": out_trade_no}
            return {
                **ok,
                "out_trade_no": out_trade_no,
                "trade_no": trade["trade_no"],
                "out_request_no": biz["out_request_no"],
                "total_amount": trade["total_amount"],
                "refund_amount": refund["amount"],
                "refund_status": "REFUND_SUCCESS",
            }
        return {"code": "40004", "msg": "Business Failed", "sub_code": "isv.invalid-method"}

    def _refund(self, trade: dict, biz: dict, ok: dict) -> dict[str, Any]:
        if trade["trade_status"] not in ("TRADE_SUCCESS", "TRADE_CLOSED") or not trade.get(
            "send_pay_date"
        ):
            return _refusal("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        request_no = biz.get("out_request_no") or trade["out_trade_no"]
        amount = Decimal(biz["refund_amount"])
        existing = trade["refunds"].get(request_no)
        if existing is not None:
            if existing["amount"] != biz["refund_amount"]:
                return _refusal("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            return {**ok, "out_trade_no": trade["out_trade_no"], "fund_change": "N",
                    "refund_fee": self._refunded(trade)}  # fmt: skip
        refunded = Decimal(self._refunded(trade))
        if amount <= 0 or refunded + amount > Decimal(trade["total_amount"]):
            return _refusal("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        done = self.fund_change == "Y"
        trade["refunds"][request_no] = {"amount": biz["refund_amount"], "done": done}
        if Decimal(self._refunded(trade)) == Decimal(trade["total_amount"]):
            trade["trade_status"] = "TRADE_CLOSED"
        return {
            **ok,
            "out_trade_no": trade["out_trade_no"],
            "trade_no": trade["trade_no"],
            "fund_change": self.fund_change,
            "refund_fee": self._refunded(trade),
        }

    @staticmethod
    def _refunded(trade: dict) -> str:
        total = sum((Decimal(r["amount"]) for r in trade["refunds"].values()), Decimal("0"))
        return f"{total:.2f}"


def _refusal(sub_code: str, sub_msg: str) -> dict[str, str]:
    return {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}
