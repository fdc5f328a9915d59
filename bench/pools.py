"""The pools of one-off rows the write scenarios consume: unpaid orders with a pending
attempt (for fresh webhooks), new orders to start paying; and the backlog the Celery
worker has left."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bench.data import PRICES, PRODUCTS, Fixtures, bid
from bench.env import BROKER_URL, PINGXX_APP_ID


@dataclass(frozen=True)
class Pending:
    order_bid: str
    attempt_bid: str
    payment_id: str  # the Ping++ charge or Stripe PaymentIntent
    user_bid: str
    product_bid: str
    price: Decimal  # major units
    currency: str

    @property
    def amount(self) -> int:
        return int(self.price * 100)


def pending_attempts(
    channel: str, count: int, tag: str, payment_ids: list[str] | None = None
) -> list[Pending]:
    """``count`` unpaid orders, each of its own user, with one pending attempt of
    ``channel`` (pingxx or stripe; Stripe's PaymentIntents exist at its double)."""
    from orders.models import Order, OrderStatus
    from payments.models import PingxxOrder, StripeOrder

    currency = "usd" if channel == "stripe" else "cny"
    rows = [
        Pending(
            order_bid=bid("pending-order-", tag, n),
            attempt_bid=bid("pending-attempt-", tag, n),
            payment_id=payment_ids[n] if payment_ids else f"ch_{bid(tag, n)[:24]}",
            user_bid=bid("pending-user-", tag, n),
            product_bid=bid("bench-product-", n % PRODUCTS),
            price=PRICES[n % PRODUCTS % len(PRICES)],
            currency=currency,
        )
        for n in range(count)
    ]
    Order.objects.bulk_create(
        [
            Order(
                order_bid=p.order_bid,
                product_bid=p.product_bid,
                user_bid=p.user_bid,
                payable_price=p.price,
                status=OrderStatus.UNPAID,
                payment_channel=channel,
                currency=currency,
            )
            for p in rows
        ],
        batch_size=1000,
    )
    if channel in ("alipay", "wechatpay"):
        _native_attempts(channel, rows)
    elif channel == "pingxx":
        PingxxOrder.objects.bulk_create(
            [
                PingxxOrder(
                    pingxx_order_bid=p.attempt_bid,
                    user_bid=p.user_bid,
                    product_bid=p.product_bid,
                    order_bid=p.order_bid,
                    transaction_no=p.attempt_bid,
                    app_id=PINGXX_APP_ID,
                    channel="alipay_qr",
                    amount=p.amount,
                    currency="CNY",
                    subject="Course",
                    body="Course",
                    client_ip="127.0.0.1",
                    charge_id=p.payment_id,
                )
                for p in rows
            ],
            batch_size=1000,
        )
    else:
        StripeOrder.objects.bulk_create(
            [
                StripeOrder(
                    stripe_order_bid=p.attempt_bid,
                    user_bid=p.user_bid,
                    product_bid=p.product_bid,
                    order_bid=p.order_bid,
                    payment_intent_id=p.payment_id,
                    amount=p.amount,
                    currency=currency,
                    metadata={"order_bid": p.order_bid, "attempt_bid": p.attempt_bid},
                )
                for p in rows
            ],
            batch_size=1000,
        )
    return rows


def _native_attempts(channel: str, rows: list[Pending]) -> None:
    """Pending attempts of a direct Alipay / WeChat Pay payment, built as the service
    builds them (``NativeRows``), with the answer a start records."""
    from payments.models import NATIVE_ATTEMPTS
    from payments.providers.base import PaymentRequest
    from payments.providers.native_rows import NativeRows

    builder = NativeRows(NATIVE_ATTEMPTS[channel])
    method = "alipay_qr" if channel == "alipay" else "wx_pub_qr"
    attempts = []
    for p in rows:
        attempt = builder.build_attempt(
            PaymentRequest(
                channel=channel,
                method=method,
                order_bid=p.order_bid,
                attempt_bid=p.attempt_bid,
                user_bid=p.user_bid,
                product_bid=p.product_bid,
                amount=p.amount,
                currency="cny",
                subject="Course",
                body="Course",
            )
        )
        attempt.raw_response = {"qr_code": "https://qr.example/x"}
        attempts.append(attempt)
    builder.model.objects.bulk_create(attempts, batch_size=1000)


def payable_orders(fixtures: Fixtures, count: int) -> list[tuple[str, str]]:
    """``count`` new orders (init), each of another (user, product) pair of the pay users:
    (order_bid, the owner's API token)."""
    from orders.models import Order, OrderStatus

    pairs = fixtures.pairs("pay", count)
    orders = [
        Order(
            product_bid=product_bid,
            user_bid=user_bid,
            payable_price=price,
            status=OrderStatus.INIT,
            payment_channel="pingxx",
            currency="cny",
        )
        for (user_bid, _), (product_bid, price) in pairs
    ]
    Order.objects.bulk_create(orders, batch_size=1000)
    return [(order.order_bid, token) for order, ((_, token), _) in zip(orders, pairs, strict=True)]


def backlog() -> int:
    """Inbox rows still to be applied (received), and tasks not done in the broker: the
    default queue's and dj-stripe's syncs (stripe_sync, rate-limited), so that each
    scenario starts with both workers idle."""
    import redis

    from payments.models import InboxStatus, WebhookEvent

    broker = redis.Redis.from_url(BROKER_URL)
    # Waiting in the queues, plus taken by a worker and not acknowledged yet (running, or
    # held back by a rate limit: kombu's Redis transport keeps those in "unacked").
    queued = broker.llen("celery") + broker.llen("stripe_sync") + broker.hlen("unacked")
    return queued + WebhookEvent.objects.filter(status=InboxStatus.RECEIVED).count()
