"""Webhooks: the signature, and events read as ProviderEvent."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from django.test import RequestFactory

from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    EVENT_REFUND,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from payments.providers.pingxx import PingxxProvider
from tests.payments.conftest import PINGXX_APP_ID
from tests.payments.providers.pingxx.helpers import (
    paid_charge,
    payment_request,
    refund_request,
    signed_headers,
)

# ---- webhooks ----


def test_charge_succeeded_webhook(pingxx, pingxx_double):
    request = payment_request()
    charge_id = pingxx.start_payment(request).provider_payment_id
    pingxx_double.pay(charge_id, transaction_no="4200000000000000")
    event = pingxx_double.charge_succeeded_event(charge_id)
    body, signature = pingxx_double.sign_event(event)
    # Django's request.headers, as the webhook view passes them.
    headers = RequestFactory().post("/", HTTP_X_PINGPLUSPLUS_SIGNATURE=signature).headers

    parsed = pingxx.parse_webhook(body, headers)

    assert (parsed.event_id, parsed.event_type, parsed.kind) == (
        event["id"],
        "charge.succeeded",
        EVENT_PAYMENT,
    )
    assert parsed.livemode is False and parsed.refund is None
    payment = parsed.payment
    assert payment.state == PAYMENT_SUCCEEDED
    assert payment.provider_payment_id == charge_id
    assert (payment.attempt_bid, payment.order_bid) == (request.attempt_bid, request.order_bid)
    assert (payment.amount, payment.currency, payment.app_id) == (1990, "cny", PINGXX_APP_ID)
    assert payment.transaction_no == "4200000000000000"
    assert payment.paid_at.tzinfo == UTC
    assert payment.raw["id"] == charge_id
    assert parsed.raw == event


@pytest.mark.parametrize(
    "status,state", [("succeeded", REFUND_SUCCEEDED), ("failed", REFUND_FAILED)]
)
def test_refund_webhook(pingxx, pingxx_double, status, state):
    charge_id = paid_charge(pingxx, pingxx_double)
    refund = pingxx.refund(refund_request(charge_id, "a" * 32))
    event = pingxx_double.refund_succeeded_event(refund.provider_refund_id)
    failure_code = "REFUND_FAIL" if status == "failed" else None
    event["data"]["object"].update(status=status, failure_code=failure_code)
    body, signature = pingxx_double.sign_event(event)

    parsed = pingxx.parse_webhook(body, {"x-pingplusplus-signature": signature})

    assert parsed.kind == EVENT_REFUND and parsed.payment is None
    assert parsed.refund.state == state
    assert parsed.refund.provider_refund_id == refund.provider_refund_id
    assert parsed.refund.provider_payment_id == charge_id
    assert (parsed.refund.amount, parsed.refund.refund_bid) == (500, "a" * 32)
    assert parsed.refund.failure_code == (failure_code or "")
    assert parsed.livemode is False


def test_unknown_event_types_are_other(pingxx, pingxx_double):
    event = pingxx_double.event("summary.daily.available", {"object": "summary", "id": "s1"})
    body, signature = pingxx_double.sign_event(event)
    parsed = pingxx.parse_webhook(body, signed_headers(signature))
    assert (parsed.kind, parsed.payment, parsed.refund) == (EVENT_OTHER, None, None)
    assert parsed.event_type == "summary.daily.available"


def a_paid_event_body(pingxx, pingxx_double) -> tuple[bytes, str]:
    charge_id = paid_charge(pingxx, pingxx_double)
    return pingxx_double.sign_event(pingxx_double.charge_succeeded_event(charge_id))


def test_webhook_without_signature(pingxx, pingxx_double):
    body, _ = a_paid_event_body(pingxx, pingxx_double)
    with pytest.raises(WebhookSignatureInvalid) as caught:
        pingxx.parse_webhook(body, {"Content-Type": "application/json"})
    assert caught.value.details["signature"] == "missing"
    assert caught.value.http_status == 401


def test_webhook_signed_with_another_key(pingxx, pingxx_double, pingxx_keys):
    charge_id = paid_charge(pingxx, pingxx_double)
    event = pingxx_double.charge_succeeded_event(charge_id)
    body, forged = pingxx_double.sign_event(event, key=pingxx_keys.stranger)
    with pytest.raises(WebhookSignatureInvalid) as caught:
        pingxx.parse_webhook(body, signed_headers(forged))
    assert caught.value.details["signature"] == "mismatch"


def test_webhook_with_the_signature_of_another_body(pingxx, pingxx_double):
    body, signature = a_paid_event_body(pingxx, pingxx_double)
    tampered = body.replace(b'"amount": 1990', b'"amount": 1')
    assert tampered != body
    with pytest.raises(WebhookSignatureInvalid):
        pingxx.parse_webhook(tampered, signed_headers(signature))


def test_webhook_with_a_signature_that_is_not_base64(pingxx, pingxx_double):
    body, _ = a_paid_event_body(pingxx, pingxx_double)
    with pytest.raises(WebhookSignatureInvalid) as caught:
        pingxx.parse_webhook(body, signed_headers("not base64!"))
    assert caught.value.details["signature"] == "malformed"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"id": "evt_1", "type": "charge.succeeded"}',
        b'{"id": "evt_1", "type": "charge.succeeded", "data": {"object": {"id": "ch_1"}}}',
        b'{"type": "charge.succeeded", "data": {"object": {}}}',
    ],
)
def test_validly_signed_bodies_that_are_not_events(pingxx, pingxx_double, body):
    with pytest.raises(WebhookPayloadInvalid):
        pingxx.parse_webhook(body, signed_headers(pingxx_double.sign(body)))


def test_webhook_for_an_unpaid_charge_succeeded_is_invalid(pingxx, pingxx_double):
    charge_id = pingxx.start_payment(payment_request()).provider_payment_id
    body, signature = pingxx_double.sign_event(pingxx_double.charge_succeeded_event(charge_id))
    with pytest.raises(WebhookPayloadInvalid):
        pingxx.parse_webhook(body, signed_headers(signature))


@pytest.mark.parametrize("public_key", ["", "not a pem"])
def test_webhooks_without_a_public_key_are_refused(
    pingxx_settings, pingxx_double, pingxx_keys, public_key
):
    pingxx_settings.PINGXX_WEBHOOK_PUBLIC_KEY = public_key
    body, signature = pingxx_double.sign_event(pingxx_double.event("charge.succeeded", {}))
    with pytest.raises(WebhookNotConfigured) as caught:
        PingxxProvider().parse_webhook(body, signed_headers(signature))
    assert caught.value.http_status == 503


# ---- stored events, parsed again ----


def test_a_stored_event_is_parsed_again_without_its_signature(pingxx, pingxx_double):
    """event_from_payload reads what parse_webhook read, from the JSON the inbox kept."""
    body, signature = a_paid_event_body(pingxx, pingxx_double)
    verified = pingxx.parse_webhook(body, signed_headers(signature))

    again = pingxx.event_from_payload(json.loads(body))

    assert again == verified
    assert again.kind == EVENT_PAYMENT and again.payment.state == PAYMENT_SUCCEEDED


def test_a_stored_refund_event_is_parsed_again(pingxx, pingxx_double):
    charge_id = paid_charge(pingxx, pingxx_double)
    refund = pingxx.refund(refund_request(charge_id, "b" * 32))
    body, signature = pingxx_double.sign_event(
        pingxx_double.refund_succeeded_event(refund.provider_refund_id)
    )
    verified = pingxx.parse_webhook(body, signed_headers(signature))
    again = pingxx.event_from_payload(json.loads(body))
    assert again == verified
    assert (again.kind, again.refund.refund_bid) == (EVENT_REFUND, "b" * 32)


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "evt_1", "type": "charge.succeeded"},
        {"id": "evt_1", "type": "charge.succeeded", "data": {"object": {"object": "refund"}}},
        {"type": "charge.succeeded", "data": {"object": {}}},
    ],
)
def test_a_stored_event_that_is_not_one_is_an_invalid_payload(pingxx, payload):
    with pytest.raises(WebhookPayloadInvalid):
        pingxx.event_from_payload(payload)
