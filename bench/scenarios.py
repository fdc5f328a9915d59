"""The scenarios: what each one sends, built (and its one-off rows made) just before
its timed run. Webhooks are signed beforehand, so that signing costs the load nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench import data, pools
from bench.env import PINGXX_APP_ID, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET
from bench.load import Request, cycle, pool, repeat

Next = Callable[[], Request | None]


@dataclass
class Context:
    fixtures: data.Fixtures
    signer: Any  # a PingxxDouble, only for its events and its Ping++ signing key
    stripe_base: str
    alipay_signer: Any = None  # an AlipayDouble (not started): signs as Alipay
    wechatpay_signer: Any = None  # a WechatpayDouble (not started): signs as WeChat Pay
    tags: Any = None

    def tag(self) -> str:
        """A new tag for one-off rows, so that every pool is distinct."""
        if self.tags is None:
            self.tags = itertools.count()
        return f"{secrets.token_hex(3)}-{next(self.tags)}"


@dataclass(frozen=True)
class Scenario:
    name: str
    build: Callable[[Context, int], Next]  # (context, pool size) -> the next request
    read: bool = False  # compared across data sizes


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _token(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


# ---- webhooks ----


def pingxx_delivery(signer: Any, pending: pools.Pending) -> Request:
    """Ping++'s charge.succeeded for a pending attempt, signed with Ping++'s key."""
    now = int(time.time())
    charge = {
        "id": pending.payment_id,
        "object": "charge",
        "created": now - 60,
        "livemode": False,
        "paid": True,
        "refunded": False,
        "reversed": False,
        "app": PINGXX_APP_ID,
        "channel": "alipay_qr",
        "order_no": pending.attempt_bid,
        "client_ip": "127.0.0.1",
        "amount": pending.amount,
        "amount_settle": pending.amount,
        "currency": "cny",
        "subject": "Course",
        "body": "Course",
        "extra": {},
        "time_paid": now,
        "time_expire": now + 86400,
        "time_settle": None,
        "transaction_no": secrets.token_hex(14),
        "amount_refunded": 0,
        "refunds": {
            "object": "list",
            "url": f"/v1/charges/{pending.payment_id}/refunds",
            "has_more": False,
            "data": [],
        },
        "failure_code": None,
        "failure_msg": None,
        "metadata": {"order_bid": pending.order_bid},
        "credential": {},
        "description": None,
    }
    body, signature = signer.sign_event(signer.event("charge.succeeded", charge))
    return Request("POST", "/webhooks/pingxx/", body, {"X-Pingplusplus-Signature": signature})


def stripe_delivery(pending: pools.Pending) -> Request:
    """Stripe's payment_intent.succeeded, signed as Stripe signs (t=...,v1=HMAC-SHA256)."""
    now = int(time.time())
    intent = {
        "id": pending.payment_id,
        "object": "payment_intent",
        "amount": pending.amount,
        "amount_received": pending.amount,
        "amount_capturable": 0,
        "currency": "usd",
        "status": "succeeded",
        "livemode": False,
        "created": now - 60,
        "capture_method": "automatic_async",
        "confirmation_method": "automatic",
        "latest_charge": "ch_3Bench" + secrets.token_hex(10),
        "payment_method": "pm_1BenchCard",
        "payment_method_types": ["card"],
        "last_payment_error": None,
        "description": None,
        "metadata": {"order_bid": pending.order_bid, "attempt_bid": pending.attempt_bid},
    }
    event = {
        "id": "evt_3Bench" + secrets.token_hex(10),
        "object": "event",
        "api_version": "2024-06-20",
        "created": now,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "payment_intent.succeeded",
        "data": {"object": intent},
    }
    body = _json(event)
    signed = hmac.new(STRIPE_WEBHOOK_SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256)
    return Request(
        "POST", "/webhooks/stripe/", body, {"Stripe-Signature": f"t={now},v1={signed.hexdigest()}"}
    )


def alipay_delivery(signer: Any, pending: pools.Pending) -> Request:
    """Alipay's trade_status_sync of a paid trade: a form signed with Alipay's key."""
    signer.trades[pending.attempt_bid] = {
        "trade_no": "2026" + secrets.token_hex(12),
        "trade_status": "TRADE_SUCCESS",
        "total_amount": f"{pending.price:.2f}",
        "subject": "Course",
        "gmt_create": "2026-12-07 10:00:00",
        "send_pay_date": "2026-12-07 10:01:00",
    }
    body = signer.notification(pending.attempt_bid)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return Request("POST", "/webhooks/alipay/", body, headers)


def wechatpay_delivery(signer: Any, pending: pools.Pending) -> Request:
    """WeChat Pay's TRANSACTION.SUCCESS: the resource encrypted with the API v3 key, the
    body signed with the platform key (with a timestamp: signed shortly before its run)."""
    resource = {
        "appid": signer.app_id, "mchid": signer.mch_id, "out_trade_no": pending.attempt_bid,
        "transaction_id": "4200" + secrets.token_hex(12), "trade_type": "NATIVE",
        "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
        "attach": pending.order_bid, "success_time": "2026-12-07T10:01:00+08:00",
        "payer": {"openid": "o-bench"},
        "amount": {"total": pending.amount, "payer_total": pending.amount,
                   "currency": "CNY", "payer_currency": "CNY"},
    }  # fmt: skip
    body, headers = signer.notification("TRANSACTION.SUCCESS", resource)
    return Request(
        "POST", "/webhooks/wechatpay/", body, {**headers, "Content-Type": "application/json"}
    )


def stripe_intents(base_url: str, count: int) -> list[str]:
    """``count`` PaymentIntents made at the Stripe double (dj-stripe fetches them again
    when it processes their events)."""
    parts = urlsplit(base_url)
    ids = []
    for _ in range(count):
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.request(
            "POST",
            "/v1/payment_intents",
            urlencode({"amount": 1990, "currency": "usd"}),
            {
                "Authorization": f"Bearer {STRIPE_SECRET_KEY}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        ids.append(json.loads(connection.getresponse().read())["id"])
        connection.close()
    return ids


def pingxx_fresh(context: Context, size: int) -> Next:
    pending = pools.pending_attempts("pingxx", size, context.tag())
    return pool([pingxx_delivery(context.signer, p) for p in pending])


def pingxx_duplicate(context: Context, size: int) -> Next:
    (pending,) = pools.pending_attempts("pingxx", 1, context.tag())
    return repeat(pingxx_delivery(context.signer, pending))  # applied once, in the warm-up


def native_fresh(channel: str) -> Callable[[Context, int], Next]:
    def build(context: Context, size: int) -> Next:
        pending = pools.pending_attempts(channel, size, context.tag())
        deliver = alipay_delivery if channel == "alipay" else wechatpay_delivery
        signer = getattr(context, f"{channel}_signer")
        return pool([deliver(signer, p) for p in pending])

    return build


def native_duplicate(channel: str) -> Callable[[Context, int], Next]:
    def build(context: Context, size: int) -> Next:
        (pending,) = pools.pending_attempts(channel, 1, context.tag())
        deliver = alipay_delivery if channel == "alipay" else wechatpay_delivery
        return repeat(deliver(getattr(context, f"{channel}_signer"), pending))

    return build


def stripe_fresh(context: Context, size: int) -> Next:
    intents = stripe_intents(context.stripe_base, size)
    pending = pools.pending_attempts("stripe", size, context.tag(), intents)
    return pool([stripe_delivery(p) for p in pending])


def stripe_duplicate(context: Context, size: int) -> Next:
    intents = stripe_intents(context.stripe_base, 1)
    (pending,) = pools.pending_attempts("stripe", 1, context.tag(), intents)
    return repeat(stripe_delivery(pending))


# ---- the API ----


def order_create(context: Context, size: int) -> Next:
    pairs = context.fixtures.pairs("create", size)
    return pool(
        [
            Request("POST", "/api/orders/", _json({"product": product_bid}), _token(token))
            for (_, token), (product_bid, _) in pairs
        ]
    )


def order_create_with_coupon(context: Context, size: int) -> Next:
    """Orders as ``order_create``, each with one shared code (a 15 % coupon with room
    for all of them): each reservation locks the batch's row, so concurrent creations
    queue on it."""
    code = data.coupon_create(context.tag())
    pairs = context.fixtures.pairs("create", size)
    return pool(
        [
            Request(
                "POST",
                "/api/orders/",
                _json({"product": product_bid, "coupon_code": code}),
                _token(token),
            )
            for (_, token), (product_bid, _) in pairs
        ]
    )


def pay_start(channel: str) -> Callable[[Context, int], Next]:
    def build(context: Context, size: int) -> Next:
        orders = pools.payable_orders(context.fixtures, size)
        body = _json({"payment_channel": channel})
        return pool(
            [
                Request("POST", f"/api/orders/{order_bid}/pay/", body, _token(token))
                for order_bid, token in orders
            ]
        )

    return build


def order_list(page_size: int) -> Callable[[Context, int], Next]:
    def build(context: Context, size: int) -> Next:
        return repeat(
            Request(
                "GET",
                f"/api/orders/?page_size={page_size}",
                headers=_token(context.fixtures.api_token),
            )
        )

    return build


def order_detail(context: Context, size: int) -> Next:
    from orders.models import Order

    bids = Order.objects.filter(user_bid=context.fixtures.api_user_bid).values_list(
        "order_bid", flat=True
    )[:200]
    headers = _token(context.fixtures.api_token)
    return cycle(
        [Request("GET", f"/api/orders/{order_bid}/", headers=headers) for order_bid in bids]
    )


# ---- the admin ----


def admin(path: Callable[[Context], str]) -> Callable[[Context, int], Next]:
    def build(context: Context, size: int) -> Next:
        return repeat(
            Request("GET", path(context), headers={"Cookie": context.fixtures.admin_cookie})
        )

    return build


SCENARIOS = [
    Scenario("reference B", lambda context, size: repeat(Request("POST", "/bench/reference"))),
    Scenario("ping++ webhook fresh", pingxx_fresh),
    Scenario("ping++ webhook duplicate", pingxx_duplicate),
    Scenario("alipay webhook fresh", native_fresh("alipay")),
    Scenario("alipay webhook duplicate", native_duplicate("alipay")),
    Scenario("wechatpay webhook fresh", native_fresh("wechatpay")),
    Scenario("wechatpay webhook duplicate", native_duplicate("wechatpay")),
    Scenario("stripe webhook fresh", stripe_fresh),
    Scenario("stripe webhook duplicate", stripe_duplicate),
    Scenario("order create (API)", order_create),
    Scenario("order create with a coupon (API)", order_create_with_coupon),
    Scenario("pay start sandbox (API)", pay_start("sandbox")),
    Scenario("pay start ping++ (API)", pay_start("pingxx")),
    Scenario("order list, 20 a page (API)", order_list(20), read=True),
    Scenario("order list, 100 a page (API)", order_list(100), read=True),
    Scenario("order detail (API)", order_detail, read=True),
    Scenario(
        "admin changelist, paid",
        admin(lambda c: "/admin/orders/order/?status__exact=502"),
        read=True,
    ),
    Scenario(
        "admin change page of an order",
        admin(lambda c: f"/admin/orders/order/{c.fixtures.admin_order_pk}/change/"),
        read=True,
    ),
    Scenario("admin dashboard", admin(lambda c: "/admin/orders/order/dashboard/"), read=True),
    Scenario(
        "admin dashboard, 90 days",
        admin(lambda c: "/admin/orders/order/dashboard/?days=90"),
        read=True,
    ),
    Scenario(
        "admin search by e-mail",
        admin(lambda c: "/admin/orders/order/?q=bench-api-0%40example.com"),
        read=True,
    ),
    Scenario(
        "admin search by amount", admin(lambda c: "/admin/orders/order/?q=CNY+299.00"), read=True
    ),
    Scenario(
        "admin search by course name", admin(lambda c: "/admin/orders/order/?q=Course+7"), read=True
    ),
]
