"""Structured logs: one JSON object per line with the payment ids, and no secrets.

The Ping++ run goes through the real SDK against the loopback double, with every
logger (pingpp, urllib3, stripe, Django, ours) at DEBUG, through the handler the
LOGGING setting builds.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from orders import services
from orders.models import OrderStatus, RefundStatus
from payments.models import PingxxOrder
from payments_project.logging import (
    REDACTED,
    RedactSecrets,
    gunicorn_logging_config,
    logging_config,
    redact,
)
from tests.factories import ProductFactory
from tests.payments.conftest import (  # noqa: F401  (fixtures)
    pingxx_channel,
    pingxx_double,
    pingxx_keys,
    pingxx_settings,
)

SDK_LOGGERS = ("pingpp", "stripe", "urllib3", "requests", "django")
STRIPE_SECRET_KEY = "sk_test_51Logging0000000000000000000000"
STRIPE_WEBHOOK_SECRET = "whsec_logging000000000000000000000"
# A Visa test number (passes the Luhn check), as a card number would be written.
PAN = "4242 4242 4242 4242"


def configure(log_format: str, level: str = "DEBUG") -> io.StringIO:
    """Configure logging as LOGGING would, its handler writing to a string."""
    stream = io.StringIO()
    logging.config.dictConfig(logging_config(log_format=log_format, level=level))
    (handler,) = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactSecrets) for f in h.filters)
    ]
    handler.setStream(stream)
    return stream


@pytest.fixture
def log_output(settings):
    """A function configuring the log format; logging is restored afterwards."""
    settings.STRIPE_SECRET_KEY = STRIPE_SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET
    yield configure
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.config.dictConfig(settings.LOGGING)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def secret_values(settings) -> list[str]:
    values = [
        settings.SECRET_KEY,
        settings.PINGXX_SECRET_KEY,
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_WEBHOOK_SECRET,
    ]
    pem_lines = [line for line in settings.PINGXX_PRIVATE_KEY.splitlines() if "-----" not in line]
    return values + pem_lines + ["PRIVATE KEY", "4242424242424242", PAN]


def test_json_line_has_the_fields_and_no_secret(settings, log_output):
    settings.PINGXX_SECRET_KEY = "sk_live_configured0000000000000"
    stream = log_output("json")
    log = logging.getLogger("payments.services")
    try:
        raise RuntimeError(f"boom with {settings.SECRET_KEY}")
    except RuntimeError:
        log.exception(
            "refund %s with key %s",
            "r1",
            settings.PINGXX_SECRET_KEY,
            extra={
                "order_bid": "o1",
                "attempt_bid": "a1",
                "headers": {"authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"},
                "payload": ["pi_3Abc123_secret_Xyz789", f"card {PAN}", STRIPE_WEBHOOK_SECRET],
                "amount": 1990,
            },
        )
    output = stream.getvalue()
    (line,) = lines(stream)
    assert line["level"] == "ERROR" and line["logger"] == "payments.services"
    assert line["timestamp"].endswith("+00:00")
    assert (line["order_bid"], line["attempt_bid"], line["amount"]) == ("o1", "a1", 1990)
    assert line["message"] == f"refund r1 with key {REDACTED}"
    assert line["headers"] == {"authorization": f"Bearer {REDACTED}"}
    assert line["payload"] == [REDACTED, f"card {REDACTED}", REDACTED]
    assert "RuntimeError: boom with [REDACTED]" in line["exception"]
    for secret in [settings.SECRET_KEY, settings.PINGXX_SECRET_KEY, "4242", "Xyz789"]:
        assert secret not in output


def test_text_line_names_the_ids(log_output):
    stream = log_output("text", "INFO")
    logging.getLogger("orders.services").info(
        "paid", extra={"order_bid": "o1", "attempt_bid": "a1", "channel": "pingxx"}
    )
    logging.getLogger("orders.services").debug("not at INFO")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("INFO orders.services: paid [order_bid=o1 attempt_bid=a1 channel=pingxx]")


def test_patterns_and_what_is_left_alone():
    assert redact("key sk_test_abcdef123456 rk_live_abcdef123456") == f"key {REDACTED} {REDACTED}"
    assert redact("card 4000-0566-5566-5556 ok") == f"card {REDACTED} ok"
    # Not card numbers: a run failing the Luhn check, digits inside an id, short numbers.
    for text in ["4242424242424241", "ord_12345678901234567", "amount 1990", "2026-11-28"]:
        assert redact(text) == text
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----"
    assert redact(f"key {pem} end") == f"key {REDACTED} end"


def test_a_wrong_format_or_level_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        logging_config(log_format="xml", level="INFO")
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL"):
        logging_config(log_format="json", level="LOUD")
    config = gunicorn_logging_config(log_format="json", level="info")
    assert config["handlers"]["access"]["stream"] == "ext://sys.stdout"
    assert config["loggers"]["gunicorn.access"]["propagate"] is False


def test_gunicorn_access_atoms_become_fields(log_output):
    stream = log_output("json", "INFO")
    atoms = {"h": "10.0.0.1", "m": "POST", "U": "/webhooks/pingxx/", "s": "200", "M": "12"}
    logging.getLogger("gunicorn.access").info('%(h)s "%(m)s %(U)s" %(s)s', atoms)
    (line,) = lines(stream)
    assert line["message"] == '10.0.0.1 "POST /webhooks/pingxx/" 200'
    assert (line["method"], line["path"], line["status"], line["duration_ms"]) == (
        "POST",
        "/webhooks/pingxx/",
        200,
        12,
    )


def deliver(client, double, event):
    body, signature = double.sign_event(event)
    response = client.post(
        "/webhooks/pingxx/",
        body,
        content_type="application/json",
        headers={"x-pingplusplus-signature": signature},
    )
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_a_pingxx_payment_refund_and_webhooks_log_ids_and_no_secret(
    client,
    settings,
    pingxx_channel,  # noqa: F811  (the fixture imported above)
    pingxx_double,  # noqa: F811
    log_output,
):
    stream = log_output("json")
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)

    product = ProductFactory(price=Decimal("19.90"), currency="cny")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(order=order, method="alipay_qr")
    attempt = PingxxOrder.objects.get(transaction_no=started.attempt.attempt_bid)
    pingxx_double.pay(attempt.charge_id)
    deliver(client, pingxx_double, pingxx_double.charge_succeeded_event(attempt.charge_id))

    pingxx_double.refund_status = "pending"
    refund = services.refund_request(order=order, reason="customer asked")
    pingxx_double.settle_refund(refund.provider_refund_id)
    deliver(client, pingxx_double, pingxx_double.refund_succeeded_event(refund.provider_refund_id))
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and order.status == OrderStatus.REFUNDED

    # A canary: were the SDK's records to carry the keys, this is what would be written.
    logging.getLogger("pingpp").debug(
        "canary %s",
        settings.PINGXX_SECRET_KEY,
        extra={"private_key": settings.PINGXX_PRIVATE_KEY, "card": PAN},
    )

    output = stream.getvalue()
    records = lines(stream)
    loggers = {record["logger"] for record in records}
    assert {"pingpp", "urllib3.connectionpool", "orders.services", "payments.services"} <= loggers
    canary = next(r for r in records if r["message"].startswith("canary"))
    assert canary["message"] == f"canary {REDACTED}"
    assert (canary["private_key"], canary["card"]) == (REDACTED, REDACTED)
    for secret in secret_values(settings):
        assert secret not in output, f"{secret[:12]}... was logged"

    ours = [r for r in records if r["logger"].startswith(("orders.", "payments."))]
    for record in ours:
        if record["message"] == "webhook stored: refund.succeeded":
            # A refund event names the refund; its order is known once it is applied.
            assert record["refund_bid"] == refund.refund_bid
        else:
            assert record.get("order_bid") == order.order_bid, record
    messages = {r["message"]: r for r in ours}
    started_line = messages[
        f"order {order.order_bid}: attempt {attempt.attempt_bid} via pingxx:alipay_qr"
    ]
    assert started_line["attempt_bid"] == attempt.attempt_bid
    assert started_line["channel"] == "pingxx"
    applied = [r for r in ours if r["message"] == "webhook applied: applied"]
    assert [r["event_id"] for r in applied] and all(r["channel"] == "pingxx" for r in applied)
    assert applied[0]["attempt_bid"] == attempt.attempt_bid
    assert applied[1]["refund_bid"] == refund.refund_bid
    refund_lines = [r for r in ours if r.get("refund_bid") == refund.refund_bid]
    assert any("requested" in r["message"] for r in refund_lines)
    assert any("succeeded" in r["message"] for r in refund_lines)
