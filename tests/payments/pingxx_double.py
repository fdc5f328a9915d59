"""A small Ping++ API on loopback, for driving the real pingpp SDK in tests.

It checks the secret key and the RSA signature the SDK makes with the merchant key (over
body + request URI + timestamp), keeps charges and refunds in memory, and signs webhook
events with a key the test generated, as Ping++ signs its own.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.Signature import pkcs1_15

from tests.loopback import LoopbackServer

# Channels the double knows, with the extras each requires.
CHANNELS = {"alipay_qr": (), "wx_pub_qr": ("product_id",), "alipay_pc_direct": ("success_url",),
            "wx_pub": ("open_id",), "wx_wap": ()}  # fmt: skip
# Channels whose unpaid charges can be reversed (撤销), as Ping++'s API reference lists them.
REVERSIBLE = ("alipay_qr", "wx_pub_qr", "wx_pub", "wx_wap")
ORDER_NO = re.compile(r"[0-9A-Za-z]{1,64}")
CHARGE_PATH = re.compile(r"^/v1/charges/([^/]+)(/refunds(?:/([^/]+))?)?$")
REVERSE_PATH = re.compile(r"^/v1/charges/([^/]+)/reverse$")


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


class DoubleError(Exception):
    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class PingxxDouble(LoopbackServer):
    def __init__(
        self,
        *,
        secret_key: str,
        app_id: str,
        merchant_public_key: RSA.RsaKey,
        webhook_private_key: RSA.RsaKey | None = None,
    ) -> None:
        super().__init__()
        self.secret_key = secret_key
        self.app_id = app_id
        self.merchant_public_key = merchant_public_key
        self.webhook_private_key = webhook_private_key
        self.refund_status = "succeeded"  # status of new refunds: succeeded, pending, failed
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []  # every request seen: method, path, body
        self._failures: list[tuple[int, bytes | None]] = []

    # ---- test hooks ----

    def fail_next(self, status_code: int = 500, times: int = 1, body: bytes | None = None) -> None:
        """The next requests answer ``body``, or a Ping++ api_error (HTML for a 502)."""
        if body is None and status_code == 502:
            body = b"<html>502 Bad Gateway</html>"
        with self._lock:
            self._failures += [(status_code, body)] * times

    def pay(self, charge_id: str, *, transaction_no: str = "") -> dict[str, Any]:
        with self._lock:
            charge = self.charges[charge_id]
            transaction_no = transaction_no or secrets.token_hex(14)
            charge.update(paid=True, time_paid=int(time.time()), transaction_no=transaction_no)
            return copy.deepcopy(charge)

    def update_charge(self, charge_id: str, **fields: Any) -> None:
        """Change a charge as Ping++ would: failure_code=..., time_expire=..., reversed=True."""
        with self._lock:
            self.charges[charge_id].update(fields)

    def settle_refund(self, refund_id: str, status: str = "succeeded") -> dict[str, Any]:
        with self._lock:
            refund = self.refunds[refund_id]
            refund.update(status=status, succeed=status == "succeeded")
            if status == "succeeded":
                refund["time_succeed"] = int(time.time())
            self._recount(self.charges[refund["charge"]])
            return copy.deepcopy(refund)

    # ---- webhooks ----

    def event(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": _new_id("evt_"), "object": "event", "created": int(time.time()),
            "livemode": False, "type": event_type, "data": {"object": copy.deepcopy(obj)},
            "pending_webhooks": 1, "request": _new_id("iar_"),
        }  # fmt: skip

    def charge_succeeded_event(self, charge_id: str) -> dict[str, Any]:
        return self.event("charge.succeeded", self.charges[charge_id])

    def refund_succeeded_event(self, refund_id: str) -> dict[str, Any]:
        return self.event("refund.succeeded", self.refunds[refund_id])

    def sign(self, body: bytes, *, key: RSA.RsaKey | None = None) -> str:
        """The X-Pingplusplus-Signature of ``body``: RSA PKCS#1 v1.5 SHA-256, base64."""
        signer = pkcs1_15.new(key or self.webhook_private_key)
        return base64.b64encode(signer.sign(SHA256.new(body))).decode("ascii")

    def sign_event(
        self, event: dict[str, Any], *, key: RSA.RsaKey | None = None
    ) -> tuple[bytes, str]:
        body = json.dumps(event, ensure_ascii=False).encode("utf-8")
        return body, self.sign(body, key=key)

    # ---- the API ----

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self._lock:
            self.requests.append({"method": method, "path": handler.path, "body": raw})
            failure = self._failures.pop(0) if self._failures else None
            delay, self._delay = self._delay, 0.0
        if delay:
            time.sleep(delay)
        kind = "text/html" if failure and failure[1] is not None else "application/json"
        try:
            if failure:
                status, answer = failure[0], failure[1] or b""
                if not answer:
                    raise DoubleError(failure[0], "Internal error", kind="api_error")
            else:
                self._authenticate(handler, raw)
                with self._lock:
                    status, payload = self._route(method, handler.path, raw)
                    answer = json.dumps(payload).encode("utf-8")
        except DoubleError as exc:
            error = {"type": exc.kind, "message": exc.message, "code": exc.kind}
            status, answer = exc.status, json.dumps({"error": error}).encode("utf-8")
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(len(answer)))
            handler.end_headers()
            handler.wfile.write(answer)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _authenticate(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        if handler.headers.get("Authorization") != f"Bearer {self.secret_key}":
            raise DoubleError(401, "Invalid API key", kind="authentication_error")
        timestamp = handler.headers.get("Pingplusplus-Request-Timestamp") or ""
        signed = (raw.decode("utf-8") + handler.path + timestamp).encode("utf-8")
        try:
            signature = base64.b64decode(handler.headers.get("Pingplusplus-Signature") or "")
            pkcs1_15.new(self.merchant_public_key).verify(SHA256.new(signed), signature)
        except (ValueError, TypeError):
            raise DoubleError(
                401, "Signature verification failed", kind="authentication_error"
            ) from None

    def _route(self, method: str, uri: str, raw: bytes) -> tuple[int, Any]:
        url = urlsplit(uri)
        params = json.loads(raw) if raw else {}
        if method == "POST" and url.path == "/v1/charges":
            return 200, self._create_charge(params)
        if method == "POST" and (reverse := REVERSE_PATH.match(url.path)):
            if reverse.group(1) not in self.charges:
                raise DoubleError(404, f"No such resource: {url.path}")
            return 200, self._reverse_charge(self.charges[reverse.group(1)])
        match = CHARGE_PATH.match(url.path)
        if not match or match.group(1) not in self.charges:
            raise DoubleError(404, f"No such resource: {url.path}")
        charge = self.charges[match.group(1)]
        if method == "GET" and not match.group(2):
            return 200, charge
        if method == "POST" and match.group(2) and not match.group(3):
            return 200, self._create_refund(charge, params)
        if method == "GET" and match.group(3):
            refund = self.refunds.get(match.group(3))
            if refund is None or refund["charge"] != charge["id"]:
                raise DoubleError(404, f"No such refund: {match.group(3)}")
            return 200, refund
        if method != "GET":
            raise DoubleError(405, "Method not allowed")
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        data, ids = charge["refunds"]["data"], [r["id"] for r in charge["refunds"]["data"]]
        start = ids.index(query["starting_after"]) + 1 if query.get("starting_after") in ids else 0
        end = start + max(1, min(int(query.get("limit", 10)), 100))
        return 200, {"object": "list", "url": charge["refunds"]["url"],
                     "has_more": end < len(data), "data": data[start:end]}  # fmt: skip

    def _create_charge(self, params: dict[str, Any]) -> dict[str, Any]:
        amount, channel = params.get("amount"), params.get("channel")
        subject, body = params.get("subject") or "", params.get("body") or ""
        extra = params.get("extra") or {}
        for wrong, message in [
            ((params.get("app") or {}).get("id") != self.app_id, "app not found"),
            (not isinstance(amount, int) or amount <= 0, "amount must be a positive integer"),
            (params.get("currency") != "cny", "currency must be cny"),
            (channel not in CHANNELS, f"channel {channel!r} is not supported"),
            (
                not ORDER_NO.fullmatch(str(params.get("order_no") or "")),
                "order_no: 1-64 alphanumerics",
            ),
            (not 0 < len(subject) <= 32 or not 0 < len(body) <= 128, "subject or body length"),
            (any(not extra.get(name) for name in CHANNELS.get(channel, ())), "extra missing"),
        ]:
            if wrong:
                raise DoubleError(400, message)
        charge_id, now = _new_id("ch_"), int(time.time())
        pay_with = {
            "alipay_qr": f"https://qr.alipay.com/{secrets.token_hex(8)}",
            "wx_pub_qr": f"weixin://wxpay/bizpayurl?pr={secrets.token_hex(4)}",
            "wx_wap": f"https://wx.tenpay.com/mweb?prepay_id={charge_id}",
        }.get(channel, {"prepay_id": charge_id, "nonce": secrets.token_hex(8)})
        credential = {"object": "credential", channel: pay_with}
        charge = {
            "id": charge_id, "object": "charge", "created": now, "livemode": False,
            "paid": False, "refunded": False, "reversed": False, "app": self.app_id,
            "channel": channel, "order_no": params["order_no"],
            "client_ip": params.get("client_ip"),
            "amount": amount, "amount_settle": amount, "currency": "cny", "subject": subject,
            "body": body, "extra": extra, "time_paid": None,
            "time_expire": params.get("time_expire") or now + 86400,
            "time_settle": None, "transaction_no": None, "amount_refunded": 0,
            "refunds": {"object": "list", "url": f"/v1/charges/{charge_id}/refunds",
                        "has_more": False, "data": []},
            "failure_code": None, "failure_msg": None, "metadata": params.get("metadata") or {},
            "credential": credential, "description": params.get("description"),
        }  # fmt: skip
        self.charges[charge_id] = charge
        return charge

    @staticmethod
    def _reverse_charge(charge: dict[str, Any]) -> dict[str, Any]:
        """Close an unpaid charge. A paid one (to be refunded instead), one already
        reversed or expired, or one of a channel without the call is refused."""
        for wrong, message in [
            (charge["channel"] not in REVERSIBLE, f"channel {charge['channel']} cannot reverse"),
            (charge["paid"], "charge is paid: refund it instead"),
            (charge["reversed"], "charge is already reversed"),
            (charge["time_expire"] <= time.time(), "charge is expired"),
        ]:
            if wrong:
                raise DoubleError(400, message)
        charge["reversed"] = True
        return charge

    def _create_refund(self, charge: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if not charge["paid"]:
            raise DoubleError(400, "charge is not paid")
        engaged = sum(r["amount"] for r in charge["refunds"]["data"] if r["status"] != "failed")
        remaining = charge["amount"] - engaged
        amount = params.get("amount", remaining)
        if not isinstance(amount, int) or amount <= 0 or amount > remaining:
            raise DoubleError(400, f"refund amount must be 1..{remaining}")
        now = int(time.time())
        refund = {
            "id": _new_id("re_"), "object": "refund", "order_no": charge["order_no"],
            "amount": amount, "created": now, "succeed": self.refund_status == "succeeded",
            "status": self.refund_status,
            "time_succeed": now if self.refund_status == "succeeded" else None,
            "description": params.get("description"), "failure_code": None,
            "failure_msg": None, "metadata": params.get("metadata") or {},
            "charge": charge["id"], "charge_order_no": charge["order_no"],
            "transaction_no": None, "extra": {},
        }  # fmt: skip
        self.refunds[refund["id"]] = refund
        charge["refunds"]["data"].insert(0, refund)  # newest first, as Ping++ lists
        self._recount(charge)
        return refund

    @staticmethod
    def _recount(charge: dict[str, Any]) -> None:
        done = [r for r in charge["refunds"]["data"] if r["status"] == "succeeded"]
        charge["amount_refunded"] = sum(r["amount"] for r in done)
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
