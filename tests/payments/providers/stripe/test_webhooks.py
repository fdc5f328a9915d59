"""Webhook signatures."""

from __future__ import annotations

import time

import pytest

from payments.providers.base import (
    EVENT_REFUND,
    PAYMENT_SUCCEEDED,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from payments.providers.stripe import StripeProvider
from tests.payments.providers.stripe.helpers import PAYLOADS, signed


def test_a_validly_signed_webhook(provider):
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    event = provider.parse_webhook(body, signed(body))
    assert event.event_id == "evt_3RecordedPiSucceeded00001"
    assert event.payment.state == PAYMENT_SUCCEEDED


@pytest.mark.parametrize(
    "name", ["stripe-signature", "STRIPE-SIGNATURE", "HTTP_STRIPE_SIGNATURE", "Stripe_Signature"]
)
def test_the_signature_header_in_any_spelling(provider, name):
    body = (PAYLOADS / "refund.created.json").read_bytes()
    headers = {name: signed(body)["Stripe-Signature"]}
    assert provider.parse_webhook(body, headers).kind == EVENT_REFUND


def test_a_webhook_without_signature(provider):
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    with pytest.raises(WebhookSignatureInvalid) as caught:
        provider.parse_webhook(body, {"Content-Type": "application/json"})
    assert caught.value.details["signature"] == "missing"


@pytest.mark.parametrize(
    "headers",
    [
        lambda body: signed(body, secret="whsec_someone_else"),
        lambda body: signed(body + b" "),
        lambda body: signed(body, at=int(time.time()) - 301),  # older than 300 s
        lambda body: {"Stripe-Signature": "t=abc,v1=def"},
        lambda body: {"Stripe-Signature": signed(body)["Stripe-Signature"].replace("v1=", "v0=")},
    ],
    ids=["wrong-secret", "other-body", "expired", "garbled", "other-scheme"],
)
def test_webhooks_that_do_not_verify(provider, headers):
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    with pytest.raises(WebhookSignatureInvalid) as caught:
        provider.parse_webhook(body, headers(body))
    assert caught.value.details["signature"] == "invalid"
    assert caught.value.http_status == 401


def test_a_signature_within_the_tolerance_verifies(provider):
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    assert provider.parse_webhook(body, signed(body, at=int(time.time()) - 290)).payment


def test_a_body_that_is_not_utf8_is_not_stripes(provider):
    body = b"\xff\xfe{}"
    with pytest.raises(WebhookSignatureInvalid):
        provider.parse_webhook(body, signed(body))


@pytest.mark.parametrize("body", [b"not json", b'{"id": "evt_1"}', b"[]"])
def test_validly_signed_bodies_that_are_not_events(provider, body):
    with pytest.raises(WebhookPayloadInvalid) as caught:
        provider.parse_webhook(body, signed(body))
    assert caught.value.details["signature"] == "valid"


def test_webhooks_without_a_secret_are_refused(stripe_settings):
    stripe_settings.STRIPE_WEBHOOK_SECRET = ""
    body = (PAYLOADS / "payment_intent.succeeded.json").read_bytes()
    with pytest.raises(WebhookNotConfigured):
        StripeProvider().parse_webhook(body, signed(body))
