"""The sandbox's events: signed by it, and parsed again from what the inbox stored."""

from __future__ import annotations

import json

import pytest

from payments.models import SandboxAttempt
from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    PaymentRequest,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from payments.providers.sandbox import SIGNATURE_HEADER, SandboxProvider, sign

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox_channel")]


@pytest.fixture
def sandbox() -> SandboxProvider:
    return SandboxProvider()


def started(sandbox: SandboxProvider) -> SandboxAttempt:
    request = PaymentRequest(
        channel="sandbox",
        method="confirm_page",
        order_bid="order0123456789abcdef0123456789a",
        attempt_bid="attempt0123456789abcdef012345678",
        user_bid="buyer",
        product_bid="prod0123456789abcdef0123456789ab",
        amount=1990,
        currency="cny",
        subject="Python",
        body="Python",
    )
    attempt = sandbox.build_attempt(request)
    attempt.save()
    attempt.save(update_fields=sandbox.apply_start(attempt, sandbox.start_payment(request)))
    return attempt


@pytest.mark.parametrize(
    ("succeeded", "state"), [(True, PAYMENT_SUCCEEDED), (False, PAYMENT_FAILED)]
)
def test_a_stored_event_is_parsed_again_without_its_signature(sandbox, succeeded, state):
    attempt = started(sandbox)
    body, headers = sandbox.complete(attempt.attempt_bid, succeeded=succeeded)
    verified = sandbox.parse_webhook(body, headers)

    again = sandbox.event_from_payload(json.loads(body))

    assert (again.event_id, again.kind, again.raw) == (
        verified.event_id,
        EVENT_PAYMENT,
        verified.raw,
    )
    assert again.payment.state == verified.payment.state == state
    assert again.payment.provider_payment_id == attempt.payment_id
    assert (again.payment.amount, again.payment.attempt_bid) == (1990, attempt.attempt_bid)


def test_other_stored_events_are_other(sandbox):
    payload = {"id": "sbxevt_1", "type": "ping", "data": {"object": {}}}
    assert sandbox.event_from_payload(payload).kind == EVENT_OTHER


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "sbxevt_1", "type": "payment.succeeded"},
        {"type": "payment.succeeded", "data": {"object": {}}},
        {"id": "sbxevt_1", "type": "payment.succeeded", "data": {"object": {"id": "sbx_1"}}},
        [],
    ],
)
def test_a_stored_event_that_is_not_one_is_an_invalid_payload(sandbox, payload):
    with pytest.raises(WebhookPayloadInvalid) as caught:
        sandbox.event_from_payload(payload)
    assert caught.value.details["signature"] == "valid"


def test_a_webhook_needs_the_sandbox_signature(sandbox):
    body = json.dumps({"id": "sbxevt_1", "type": "ping", "data": {"object": {}}}).encode()
    with pytest.raises(WebhookSignatureInvalid) as caught:
        sandbox.parse_webhook(body, {})
    assert caught.value.details["signature"] == "missing"
    with pytest.raises(WebhookSignatureInvalid):
        sandbox.parse_webhook(body, {SIGNATURE_HEADER: sign(body + b" ")})
    assert sandbox.parse_webhook(body, {SIGNATURE_HEADER.lower(): sign(body)}).kind == EVENT_OTHER


def test_a_signed_body_that_is_not_json_is_an_invalid_payload(sandbox):
    body = b"not json"
    with pytest.raises(WebhookPayloadInvalid):
        sandbox.parse_webhook(body, {SIGNATURE_HEADER: sign(body)})
