"""A small Stripe API on loopback, for driving the real stripe SDK in tests.

It records every request (method, path, decoded form or query, Idempotency-Key and
the other headers), keeps PaymentIntents, Checkout Sessions, charges and refunds in
memory, answers with objects shaped like Stripe's, and replays the answer to a repeated
Idempotency-Key as Stripe does. Tests can make the next requests fail.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.loopback import LoopbackServer

PI_PATH = re.compile(r"^/v1/payment_intents/([^/]+)$")
PI_CANCEL_PATH = re.compile(r"^/v1/payment_intents/([^/]+)/cancel$")
SESSION_PATH = re.compile(r"^/v1/checkout/sessions/([^/]+)$")
SESSION_EXPIRE_PATH = re.compile(r"^/v1/checkout/sessions/([^/]+)/expire$")
# What Stripe lets be cancelled (it also allows processing "in rare cases": not faked).
CANCELLABLE = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
)
REFUND_PATH = re.compile(r"^/v1/refunds/([^/]+)$")
TOKEN = re.compile(r"\[([^\]]*)\]")


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        path = [head, *TOKEN.findall(key[len(head) :])]
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value

    def lists(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: lists(item) for key, item in node.items()}
            if node and all(key.isdigit() for key in node):
                return [node[key] for key in sorted(node, key=int)]
            if list(node) == [""]:  # expand[]=x
                return [node[""]]
        return node

    return lists(root)


class StripeFakeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str = "",
        param: str = "",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = (
            status,
            message,
            kind,
            code,
            param,
        )

    def body(self) -> dict[str, Any]:
        error = {"type": self.kind, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


class FakeStripe(LoopbackServer):
    """In-memory Stripe: /v1/payment_intents (and their cancel), /v1/checkout/sessions (and
    their expire), /v1/refunds."""

    def __init__(self, *, secret_key: str) -> None:
        super().__init__()
        self.secret_key = secret_key
        self.refund_status = "succeeded"  # status of new refunds
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.webhook_endpoints: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self._replies: dict[str, tuple[int, bytes]] = {}  # idempotency key -> answer
        self._failures: list[tuple[int, bytes, dict[str, str]]] = []

    # ---- test hooks ----

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next requests answer ``status`` with ``body`` (a Stripe api_error by
        default), before Stripe records anything for their idempotency keys."""
        if body is None:
            body = json.dumps(
                {"error": {"type": "api_error", "message": "Something went wrong."}}
            ).encode()
        with self._lock:
            self._failures += [(status, body, headers or {})] * times

    def posts(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"] == path]

    def succeed(self, intent_id: str) -> dict[str, Any]:
        """The payer pays the PaymentIntent: a charge with a receipt URL."""
        with self._lock:
            intent = self.payment_intents[intent_id]
            charge = {
                "id": _new_id("ch_3Fake"),
                "object": "charge",
                "amount": intent["amount"],
                "amount_captured": intent["amount"],
                "amount_refunded": 0,
                "created": int(time.time()),
                "currency": intent["currency"],
                "livemode": False,
                "metadata": dict(intent["metadata"]),
                "paid": True,
                "payment_intent": intent_id,
                "payment_method": "pm_1FakeCard",
                "receipt_url": f"https://pay.stripe.com/receipts/payment/{intent_id}",
                "refunded": False,
                "status": "succeeded",
            }
            self.charges[charge["id"]] = charge
            intent.update(
                status="succeeded",
                amount_received=intent["amount"],
                latest_charge=charge["id"],
                payment_method="pm_1FakeCard",
                last_payment_error=None,
            )
            return copy.deepcopy(intent)

    def decline(self, intent_id: str, decline_code: str = "insufficient_funds") -> None:
        with self._lock:
            self.payment_intents[intent_id].update(
                status="requires_payment_method",
                last_payment_error={
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": decline_code,
                    "message": "Your card has insufficient funds.",
                },
            )

    def complete_session(self, session_id: str, *, paid: bool = True) -> dict[str, Any]:
        """The payer completes Checkout: its PaymentIntent exists, paid or pending."""
        with self._lock:
            session = self.sessions[session_id]
            intent = self._new_payment_intent(
                amount=session["amount_total"],
                currency=session["currency"],
                metadata=session["_payment_intent_metadata"],
            )
            session.update(
                status="complete",
                payment_status="paid" if paid else "unpaid",
                payment_intent=intent["id"],
                url=None,
            )
        if paid:
            self.succeed(intent["id"])
        return self._public(session)

    # ---- the API ----

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw_body = handler.rfile.read(length).decode() if length else ""
        text = raw_body if method == "POST" else parts.query
        params = decode_form(parse_qsl(text, keep_blank_values=True))
        headers = {key.lower(): value for key, value in handler.headers.items()}
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": parts.path,
                    "params": params,
                    "body": raw_body,
                    "headers": headers,
                    "idempotency_key": headers.get("idempotency-key", ""),
                }
            )
            failure = self._failures.pop(0) if self._failures else None
            delay, self._delay = self._delay, 0.0
            key = headers.get("idempotency-key", "") if method == "POST" else ""
            replay = self._replies.get(key) if key else None
        if delay:
            time.sleep(delay)
        if failure is not None:
            self._send(handler, *failure)
            return
        if replay is not None:
            self._send(handler, *replay, {"Idempotent-Replayed": "true"})
            return
        try:
            if headers.get("authorization") != f"Bearer {self.secret_key}":
                raise StripeFakeError(401, "Invalid API Key provided.")
            with self._lock:
                answer = self._route(method, parts.path, params)
            status, body = 200, json.dumps(answer).encode()
        except StripeFakeError as exc:
            status, body = exc.status, json.dumps(exc.body()).encode()
        if key:
            with self._lock:
                self._replies[key] = (status, body)
        self._send(handler, status, body, {})

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.send_header("Request-Id", _new_id("req_"))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _route(self, method: str, path: str, params: dict[str, Any]) -> Any:
        expand = params.get("expand") or []
        if method == "POST" and path == "/v1/payment_intents":
            return self._public(self._create_payment_intent(params))
        if method == "GET" and (match := PI_PATH.match(path)):
            return self._expand_intent(self._get(self.payment_intents, match[1]), expand, "")
        if method == "POST" and (match := PI_CANCEL_PATH.match(path)):
            return self._cancel_payment_intent(self._get(self.payment_intents, match[1]), params)
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._public(self._create_session(params))
        if method == "POST" and (match := SESSION_EXPIRE_PATH.match(path)):
            return self._expire_session(self._get(self.sessions, match[1]))
        if method == "GET" and (match := SESSION_PATH.match(path)):
            session = self._public(self._get(self.sessions, match[1]))
            if "payment_intent" in expand and session.get("payment_intent"):
                intent = self.payment_intents[session["payment_intent"]]
                session["payment_intent"] = self._expand_intent(intent, expand, "payment_intent.")
            return session
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(params)
        if method == "GET" and (match := REFUND_PATH.match(path)):
            return copy.deepcopy(self._get(self.refunds, match[1]))
        if method == "GET" and path == "/v1/refunds":
            return self._list_refunds(params)
        if method == "POST" and path == "/v1/webhook_endpoints":
            endpoint = {
                "id": _new_id("we_"), "object": "webhook_endpoint", "url": params["url"],
                "enabled_events": params["enabled_events"], "status": "enabled",
                "livemode": False, "secret": _new_id("whsec_"),
            }  # fmt: skip
            self.webhook_endpoints.append(endpoint)
            return endpoint
        raise StripeFakeError(404, f"Unrecognized request URL ({method}: {path}).")

    @staticmethod
    def _get(store: dict[str, dict[str, Any]], object_id: str) -> dict[str, Any]:
        if object_id not in store:
            raise StripeFakeError(
                404, f"No such object: '{object_id}'", code="resource_missing", param="id"
            )
        return store[object_id]

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value) for key, value in obj.items() if key[0] != "_"}

    def _expand_intent(self, intent: dict[str, Any], expand: list[str], prefix: str) -> Any:
        intent = self._public(intent)
        if f"{prefix}latest_charge" in expand and intent.get("latest_charge"):
            intent["latest_charge"] = copy.deepcopy(self.charges[intent["latest_charge"]])
        return intent

    @staticmethod
    def _amount(params: dict[str, Any], name: str) -> int:
        value = params.get(name, "")
        if not str(value).isdigit() or int(value) <= 0:
            raise StripeFakeError(400, f"Invalid integer: {value}", param=name)
        return int(value)

    @staticmethod
    def _currency(params: dict[str, Any], name: str) -> str:
        currency = params.get(name, "")
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise StripeFakeError(400, f"Invalid currency: {currency}", param=name)
        return currency

    def _new_payment_intent(
        self, *, amount: int, currency: str, metadata: dict[str, str], **extra: Any
    ) -> dict[str, Any]:
        intent_id = _new_id("pi_3Fake")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic_async",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": currency,
            "description": None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "payment_method": None,
            "payment_method_types": ["card"],
            "status": "requires_payment_method",
            **extra,
        }
        self.payment_intents[intent_id] = intent
        return intent

    def _create_payment_intent(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._new_payment_intent(
            amount=self._amount(params, "amount"),
            currency=self._currency(params, "currency"),
            metadata=dict(params.get("metadata") or {}),
            description=params.get("description"),
            payment_method_types=params.get("payment_method_types") or ["card"],
        )

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("mode") != "payment":
            raise StripeFakeError(400, "Only payment mode is faked.", param="mode")
        if not params.get("success_url"):
            raise StripeFakeError(400, "Missing required param: success_url.")
        items = params.get("line_items") or []
        if not items:
            raise StripeFakeError(400, "Missing required param: line_items.")
        total, currency = 0, ""
        for index, item in enumerate(items):
            data = item.get("price_data") or {}
            currency = self._currency(data, "currency")
            quantity = int(item.get("quantity") or 0)
            total += self._amount(data, "unit_amount") * quantity
            if not (data.get("product_data") or {}).get("name"):
                raise StripeFakeError(
                    400, "Missing product name.", param=f"line_items[{index}][price_data]"
                )
        now = int(time.time())
        expires_at = int(params.get("expires_at") or now + 86400)
        if not now + 1800 <= expires_at <= now + 86400:
            raise StripeFakeError(400, "expires_at out of range.", param="expires_at")
        session_id = _new_id("cs_test_Fake")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": currency,
            "expires_at": expires_at,
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "mode": "payment",
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params["success_url"],
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "_payment_intent_metadata": dict(
                (params.get("payment_intent_data") or {}).get("metadata") or {}
            ),
        }
        self.sessions[session_id] = session
        return session

    def _cancel_payment_intent(
        self, intent: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        if intent["status"] not in CANCELLABLE:
            raise StripeFakeError(
                400,
                f"You cannot cancel this PaymentIntent because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                f"may be canceled: {', '.join(CANCELLABLE)}.",
                code="payment_intent_unexpected_state",
            )
        in_session = any(s.get("payment_intent") == intent["id"] for s in self.sessions.values())
        if in_session and intent["status"] != "requires_capture":
            raise StripeFakeError(
                400,
                "You cannot cancel the PaymentIntent of a Checkout Session: expire the "
                "Checkout Session instead.",
                code="payment_intent_unexpected_state",
            )
        intent.update(
            status="canceled",
            canceled_at=int(time.time()),
            cancellation_reason=params.get("cancellation_reason"),
        )
        return self._public(intent)

    def _expire_session(self, session: dict[str, Any]) -> dict[str, Any]:
        if session["status"] != "open":
            raise StripeFakeError(
                400,
                f"Only Checkout Sessions with a status in [open] can be expired. This "
                f"Checkout Session has a status of {session['status']}.",
            )
        session.update(status="expired", url=None)
        return self._public(session)

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent = self._get(self.payment_intents, params.get("payment_intent", ""))
        if intent["status"] != "succeeded":
            raise StripeFakeError(
                400,
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        refunded = sum(
            r["amount"]
            for r in self.refunds.values()
            if r["payment_intent"] == intent["id"] and r["status"] not in ("failed", "canceled")
        )
        amount = (
            self._amount(params, "amount") if "amount" in params else intent["amount"] - refunded
        )
        if refunded + amount > intent["amount_received"]:
            raise StripeFakeError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({intent['amount_received'] - refunded})",
                code="amount_too_large",
                param="amount",
            )
        refund = {
            "id": _new_id("re_3Fake"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": intent["latest_charge"],
            "created": int(time.time()),
            "currency": intent["currency"],
            "destination_details": None,
            "failure_reason": "declined" if self.refund_status == "failed" else None,
            "metadata": dict(params.get("metadata") or {}),
            "payment_intent": intent["id"],
            "reason": params.get("reason"),
            "receipt_number": None,
            "status": self.refund_status,
        }
        self.refunds[refund["id"]] = refund
        return copy.deepcopy(refund)

    def _list_refunds(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = int(params.get("limit") or 10)
        refunds = sorted(
            (
                r
                for r in self.refunds.values()
                if not params.get("payment_intent")
                or r["payment_intent"] == params["payment_intent"]
            ),
            key=lambda r: (r["created"], r["id"]),
            reverse=True,
        )
        after = params.get("starting_after")
        if after:
            ids = [r["id"] for r in refunds]
            if after not in ids:
                raise StripeFakeError(400, f"No such refund: '{after}'", param="starting_after")
            refunds = refunds[ids.index(after) + 1 :]
        page = refunds[:limit]
        return {
            "object": "list",
            "data": copy.deepcopy(page),
            "has_more": len(refunds) > limit,
            "url": "/v1/refunds",
        }
