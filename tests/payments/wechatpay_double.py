"""A small WeChat Pay API v3 on loopback, for driving the real wechatpayv3 SDK in tests.

It checks the WECHATPAY2-SHA256-RSA2048 Authorization the SDK makes with the merchant
key (over method, URL, timestamp, nonce and body), keeps orders and refunds in memory,
signs every answer with the platform key (as WeChat Pay does, and as the SDK checks),
and makes notifications: the resource encrypted with the API v3 key, the whole signed.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.loopback import LoopbackServer

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
CHINA = timezone(timedelta(hours=8))
OUT_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
CREATE_PATH = re.compile(r"^/v3/pay/transactions/(native|jsapi|h5)$")
ORDER_PATH = re.compile(r"^/v3/pay/transactions/out-trade-no/([^/]+)(/close)?$")
REFUND_PATH = re.compile(r"^/v3/refund/domestic/refunds(?:/([^/]+))?$")
AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')
PAID_STATES = ("SUCCESS", "REFUND")
# What a query shows of an order.
SHOWN = ("appid", "mchid", "out_trade_no", "transaction_id", "trade_type", "trade_state",
         "trade_state_desc", "bank_type", "attach", "success_time", "payer", "amount")  # fmt: skip


def _now() -> str:
    return datetime.now(CHINA).isoformat(timespec="seconds")


class DoubleError(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status, self.code, self.message = status, code, message or code


class WechatpayDouble(LoopbackServer):
    def __init__(
        self,
        *,
        mch_id: str,
        app_id: str,
        merchant_serial_no: str,
        merchant_public_key: rsa.RSAPublicKey,
        platform_key: rsa.RSAPrivateKey,
        platform_serial: str,
        api_v3_key: str,
    ) -> None:
        super().__init__()
        self.mch_id, self.app_id = mch_id, app_id
        self.merchant_serial_no = merchant_serial_no
        self.merchant_public_key = merchant_public_key
        self.platform_key, self.platform_serial = platform_key, platform_serial
        self.api_v3_key = api_v3_key
        self.refund_status = "SUCCESS"  # status of new refunds: SUCCESS, PROCESSING, ABNORMAL
        self.response_key: rsa.RSAPrivateKey | None = None  # sign answers with another key
        self.orders: dict[str, dict[str, Any]] = {}  # by out_trade_no
        self.refunds: dict[str, dict[str, Any]] = {}  # by out_refund_no
        self.requests: list[dict[str, Any]] = []  # every request seen: method, path, body
        self._failures: list[tuple[int, bytes | None]] = []

    # ---- test hooks ----

    def fail_next(self, status_code: int = 500, times: int = 1, body: bytes | None = None) -> None:
        """The next requests answer ``body``, or WeChat Pay's SYSTEM_ERROR."""
        with self._lock:
            self._failures += [(status_code, body)] * times

    def pay(self, out_trade_no: str, *, transaction_id: str = "") -> dict[str, Any]:
        """The buyer pays the order."""
        with self._lock:
            order = self.orders[out_trade_no]
            order.update(
                trade_state="SUCCESS",
                trade_state_desc="支付成功",
                transaction_id=transaction_id or "4200" + secrets.token_hex(12),
                success_time=_now(),
                bank_type="OTHERS",
                payer={"openid": order.get("payer", {}).get("openid") or "o-buyer"},
            )
            order["amount"].update(payer_total=order["amount"]["total"], payer_currency="CNY")
            return self._transaction(order)

    def settle_refund(self, out_refund_no: str, status: str = "SUCCESS") -> dict[str, Any]:
        with self._lock:
            refund = self.refunds[out_refund_no]
            refund["status"] = status
            if status == "SUCCESS":
                refund["success_time"] = _now()
                self.orders[refund["out_trade_no"]]["trade_state"] = "REFUND"
            return copy.deepcopy(refund)

    def transaction(self, out_trade_no: str) -> dict[str, Any]:
        with self._lock:
            return self._transaction(self.orders[out_trade_no])

    # ---- notifications ----

    def notification(
        self,
        event_type: str,
        resource: dict[str, Any],
        *,
        timestamp: int | None = None,
        key: rsa.RSAPrivateKey | None = None,
        api_v3_key: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A notification as WeChat Pay posts it: (body, headers). ``key`` signs it
        instead of the platform key; ``api_v3_key`` encrypts it instead of ours."""
        kind = "refund" if event_type.startswith("REFUND.") else "transaction"
        nonce = secrets.token_hex(6)  # 12 characters, as WeChat Pay's
        ciphertext = AESGCM((api_v3_key or self.api_v3_key).encode("utf-8")).encrypt(
            nonce.encode("utf-8"), json.dumps(resource).encode("utf-8"), kind.encode("utf-8")
        )
        notification = {
            "id": f"EV-{secrets.token_hex(10)}",
            "create_time": _now(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "支付成功" if kind == "transaction" else "退款状态变更",
            "resource": {
                "original_type": kind,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
                "associated_data": kind,
                "nonce": nonce,
            },
        }
        body = json.dumps(notification, ensure_ascii=False).encode("utf-8")
        return body, self.signature_headers(body, timestamp=timestamp, key=key)

    def payment_notification(self, out_trade_no: str, **options: Any) -> tuple[bytes, dict]:
        return self.notification("TRANSACTION.SUCCESS", self.transaction(out_trade_no), **options)

    def refund_notification(self, out_refund_no: str, **options: Any) -> tuple[bytes, dict]:
        with self._lock:
            refund = self.refunds[out_refund_no]
            amount = refund["amount"]
            resource = {
                "mchid": self.mch_id, "out_trade_no": refund["out_trade_no"],
                "transaction_id": refund["transaction_id"], "out_refund_no": out_refund_no,
                "refund_id": refund["refund_id"], "refund_status": refund["status"],
                "success_time": refund.get("success_time"),
                "user_received_account": refund["user_received_account"],
                "amount": {"total": amount["total"], "refund": amount["refund"],
                           "payer_total": amount["payer_total"],
                           "payer_refund": amount["payer_refund"]},
            }  # fmt: skip
        event = {"SUCCESS": "REFUND.SUCCESS", "CLOSED": "REFUND.CLOSED"}
        return self.notification(
            event.get(refund["status"], "REFUND.ABNORMAL"), resource, **options
        )

    def signature_headers(
        self, body: bytes, *, timestamp: int | None = None, key: rsa.RSAPrivateKey | None = None
    ) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16).upper()
        message = f"{stamp}\n{nonce}\n".encode() + body + b"\n"
        signature = (key or self.platform_key).sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {
            "Wechatpay-Serial": self.platform_serial,
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": base64.b64encode(signature).decode("ascii"),
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    # ---- the API ----

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self._lock:
            self.requests.append({"method": method, "path": handler.path, "body": raw})
            failure = self._failures.pop(0) if self._failures else None
            delay, self._delay = self._delay, 0.0
            signing_key = self.response_key
        if delay:
            time.sleep(delay)
        kind = "application/json"
        try:
            if failure:
                status, answer = failure[0], failure[1]
                if answer is None:
                    raise DoubleError(status, "SYSTEM_ERROR", "系统错误")
                kind = "text/html"
            else:
                self._authenticate(handler, method, raw)
                with self._lock:
                    status, payload = self._route(method, handler.path, raw)
                answer = b"" if payload is None else json.dumps(payload).encode("utf-8")
        except DoubleError as exc:
            error = {"code": exc.code, "message": exc.message}
            status, answer = exc.status, json.dumps(error).encode("utf-8")
        headers = self.signature_headers(answer, key=signing_key)
        try:
            handler.send_response(status)
            if answer:
                handler.send_header("Content-Type", f"{kind}; charset=utf-8")
            handler.send_header("Content-Length", str(len(answer)))
            handler.send_header("Request-ID", secrets.token_hex(16))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(answer)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _authenticate(self, handler: BaseHTTPRequestHandler, method: str, raw: bytes) -> None:
        scheme, _, rest = (handler.headers.get("Authorization") or "").partition(" ")
        fields = dict(AUTH_FIELD.findall(rest))
        if (
            scheme != SIGNATURE_TYPE
            or fields.get("mchid") != self.mch_id
            or fields.get("serial_no") != self.merchant_serial_no
            or abs(time.time() - int(fields.get("timestamp") or 0)) > 300
        ):
            raise DoubleError(401, "SIGN_ERROR", "签名错误: mchid, serial_no or timestamp")
        message = (
            (
                f"{method}\n{handler.path}\n{fields['timestamp']}\n{fields.get('nonce_str')}\n"
            ).encode()
            + raw
            + b"\n"
        )
        try:
            signature = base64.b64decode(fields.get("signature") or "")
            self.merchant_public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise DoubleError(401, "SIGN_ERROR", "签名错误") from None

    def _route(self, method: str, uri: str, raw: bytes) -> tuple[int, Any]:
        url = urlsplit(uri)
        params = json.loads(raw) if raw else {}
        if method == "POST" and (create := CREATE_PATH.match(url.path)):
            return 200, self._create(create.group(1), params)
        if order_path := ORDER_PATH.match(url.path):
            out_trade_no = unquote(order_path.group(1))
            order = self.orders.get(out_trade_no)
            if method == "GET" and not order_path.group(2):
                if parse_qs(url.query).get("mchid") != [self.mch_id]:
                    raise DoubleError(400, "PARAM_ERROR", "mchid")
                if order is None:
                    raise DoubleError(404, "ORDER_NOT_EXIST", "订单不存在")
                return 200, self._transaction(order)
            if method == "POST" and order_path.group(2):
                if params.get("mchid") != self.mch_id:
                    raise DoubleError(400, "PARAM_ERROR", "mchid")
                if order is None:
                    raise DoubleError(404, "ORDER_NOT_EXIST", "订单不存在")
                if order["trade_state"] in PAID_STATES:
                    raise DoubleError(400, "ORDERPAID", "订单已支付")
                order.update(trade_state="CLOSED", trade_state_desc="订单已关闭")
                return 204, None
        if refund_path := REFUND_PATH.match(url.path):
            if method == "POST" and not refund_path.group(1):
                return 200, self._refund(params)
            if method == "GET" and refund_path.group(1):
                refund = self.refunds.get(unquote(refund_path.group(1)))
                if refund is None:
                    raise DoubleError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
                return 200, refund
        raise DoubleError(404, "NOT_FOUND", f"No such resource: {url.path}")

    def _create(self, trade_type: str, params: dict[str, Any]) -> dict[str, Any]:
        amount = params.get("amount") or {}
        total = amount.get("total")
        scene = params.get("scene_info") or {}
        for wrong, message in [
            (params.get("appid") != self.app_id, "appid"),
            (params.get("mchid") != self.mch_id, "mchid"),
            (not 0 < len(params.get("description") or "") <= 127, "description"),
            (not OUT_NO.fullmatch(str(params.get("out_trade_no") or "")), "out_trade_no"),
            (not str(params.get("notify_url") or "").startswith("https://"), "notify_url"),
            (not isinstance(total, int) or isinstance(total, bool) or total <= 0, "amount.total"),
            (amount.get("currency", "CNY") != "CNY", "amount.currency"),
            (len(params.get("attach") or "") > 128, "attach"),
            (trade_type == "jsapi" and not (params.get("payer") or {}).get("openid"), "openid"),
            (trade_type == "h5" and not scene.get("payer_client_ip"), "scene_info"),
            (trade_type == "h5" and not (scene.get("h5_info") or {}).get("type"), "h5_info"),
        ]:
            if wrong:
                raise DoubleError(400, "PARAM_ERROR", f"输入源“/body/{message}”映射到字段失败")
        if expire := params.get("time_expire"):
            datetime.fromisoformat(expire)  # an RFC 3339 time, or the request fails
        out_trade_no = params["out_trade_no"]
        order = self.orders.get(out_trade_no)
        if order is not None:
            if order["trade_state"] in PAID_STATES:
                raise DoubleError(400, "ORDERPAID", "该订单已支付")
            if order["trade_state"] == "CLOSED":
                raise DoubleError(400, "ORDER_CLOSED", "订单已关闭")
            if (order["trade_type"], order["amount"]["total"], order["description"]) != (
                trade_type.upper(), total, params["description"]):  # fmt: skip
                raise DoubleError(400, "INVALID_REQUEST", "201 商户订单号重复")
            return copy.deepcopy(order["_answer"])
        prepay_id = "wx" + secrets.token_hex(15)
        answer = {
            "native": {"code_url": f"weixin://wxpay/bizpayurl?pr={secrets.token_hex(4)}"},
            "jsapi": {"prepay_id": prepay_id},
            "h5": {"h5_url": f"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id={prepay_id}"},
        }[trade_type]  # fmt: skip
        self.orders[out_trade_no] = {
            "appid": self.app_id, "mchid": self.mch_id, "out_trade_no": out_trade_no,
            "trade_type": trade_type.upper(), "trade_state": "NOTPAY",
            "trade_state_desc": "订单未支付", "attach": params.get("attach", ""),
            "description": params["description"], "notify_url": params["notify_url"],
            "time_expire": params.get("time_expire"),
            "amount": {"total": total, "currency": "CNY", "payer_currency": "CNY"},
            "payer": dict(params.get("payer") or {}), "_answer": answer,
        }  # fmt: skip
        return copy.deepcopy(answer)

    @staticmethod
    def _transaction(order: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy({name: order[name] for name in SHOWN if name in order})

    def _refund(self, params: dict[str, Any]) -> dict[str, Any]:
        amount = params.get("amount") or {}
        out_refund_no, refund_amount = params.get("out_refund_no"), amount.get("refund")
        order = self.orders.get(params.get("out_trade_no") or "")
        if order is None:
            raise DoubleError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if not OUT_NO.fullmatch(str(out_refund_no or "")):
            raise DoubleError(400, "PARAM_ERROR", "out_refund_no")
        if not str(params.get("notify_url") or "https://").startswith("https://"):
            raise DoubleError(400, "PARAM_ERROR", "notify_url")
        if amount.get("total") != order["amount"]["total"] or amount.get("currency") != "CNY":
            raise DoubleError(400, "INVALID_REQUEST", "订单金额或币种与原订单不一致")
        if not isinstance(refund_amount, int) or refund_amount <= 0:
            raise DoubleError(400, "PARAM_ERROR", "amount.refund")
        existing = self.refunds.get(out_refund_no)
        if existing is not None:
            if existing["out_trade_no"] != order["out_trade_no"] or (
                existing["amount"]["refund"] != refund_amount
            ):
                raise DoubleError(400, "INVALID_REQUEST", "退款单号重复, 参数与之前不一致")
            return copy.deepcopy(existing)
        if order["trade_state"] not in PAID_STATES:
            raise DoubleError(400, "INVALID_REQUEST", "订单未支付")
        engaged = sum(
            r["amount"]["refund"] for r in self.refunds.values()
            if r["out_trade_no"] == order["out_trade_no"] and r["status"] != "ABNORMAL"
        )  # fmt: skip
        if refund_amount > order["amount"]["total"] - engaged:
            raise DoubleError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        refund = {
            "refund_id": "50" + secrets.token_hex(14), "out_refund_no": out_refund_no,
            "transaction_id": order["transaction_id"], "out_trade_no": order["out_trade_no"],
            "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
            "create_time": _now(), "status": self.refund_status, "funds_account": "AVAILABLE",
            "reason": params.get("reason", ""),
            "amount": {"total": order["amount"]["total"], "refund": refund_amount,
                       "payer_total": order["amount"]["total"], "payer_refund": refund_amount,
                       "settlement_total": order["amount"]["total"],
                       "settlement_refund": refund_amount, "discount_refund": 0,
                       "currency": "CNY", "refund_fee": 0},
        }  # fmt: skip
        if self.refund_status == "SUCCESS":
            refund["success_time"] = _now()
            order["trade_state"] = "REFUND"
        self.refunds[out_refund_no] = refund
        return copy.deepcopy(refund)
