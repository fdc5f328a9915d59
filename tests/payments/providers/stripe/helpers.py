"""Values and helpers the Stripe provider tests share."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import time
from pathlib import Path

from payments.providers.base import PaymentRequest, RefundRequest

SECRET_KEY = "sk_test_" + "FakeStripeSecretKey0000000000"
PUBLISHABLE_KEY = "pk_test_" + "FakeStripePublishableKey0000"
WEBHOOK_SECRET = "whsec_" + "FakeStripeWebhookSecret00000"
PAYLOADS = Path(__file__).parents[2] / "stripe_payloads"
SUCCESS_URL = "https://shop.example.com/paid?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example.com/cancelled"


def payment_request(method: str = "payment_intent", **overrides) -> PaymentRequest:
    values = {
        "channel": "stripe",
        "method": method,
        "order_bid": "0123456789abcdef0123456789abcdef",
        "attempt_bid": os.urandom(16).hex(),
        "user_bid": "user0123456789abcdef0123456789ab",
        "product_bid": "prod0123456789abcdef0123456789ab",
        "amount": 1990,
        "currency": "usd",
        "subject": "Python for beginners",
        "body": "Python for beginners (0123456789abcdef0123456789abcdef)",
        "metadata": {"order_bid": "0123456789abcdef0123456789abcdef"},
    }
    return PaymentRequest(**{**values, **overrides})


def refund_request(payment_id: str, refund_bid: str = "", amount: int = 500) -> RefundRequest:
    return RefundRequest(
        channel="stripe",
        refund_bid=refund_bid or os.urandom(16).hex(),
        provider_payment_id=payment_id,
        amount=amount,
        currency="usd",
        reason="not what I expected",
    )


def paid_intent(provider, fake, **overrides) -> str:
    intent_id = provider.start_payment(payment_request(**overrides)).provider_payment_id
    fake.succeed(intent_id)
    return intent_id


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def signed(body: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict:
    timestamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {"Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
