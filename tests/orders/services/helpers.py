"""Helpers of the service tests through the sandbox channel."""

from __future__ import annotations

import json
from unittest import mock

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import Refund
from payments import registry
from payments.models import SandboxAttempt
from payments.providers import sandbox
from payments.providers.base import ProviderUnavailable

SandboxProvider = type(registry.get_provider_any("sandbox"))


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0]}")
    return client


def signed(event: dict) -> tuple[bytes, dict]:
    body = json.dumps(event).encode()
    return body, {sandbox.SIGNATURE_HEADER: sandbox.sign(body)}


def unclosable():
    """The provider cannot be reached to close an attempt (a failed close)."""
    return mock.patch.object(
        SandboxProvider,
        "close_payment",
        side_effect=ProviderUnavailable("sandbox is down", channel="sandbox"),
    )


def refund_event(event_id: str, refund: Refund, status: str) -> tuple[bytes, dict]:
    attempt = SandboxAttempt.objects.get(attempt_bid=refund.attempt_bid)
    return signed(
        {
            "id": event_id,
            "type": f"refund.{status}",
            "data": {
                "object": {
                    "id": refund.provider_refund_id,
                    "object": "refund",
                    "payment": attempt.payment_id,
                    "refund_bid": refund.refund_bid,
                    "amount": int(refund.amount * 100),
                    "currency": refund.currency,
                    "status": status,
                    "failure_code": "account_closed" if status == "failed" else "",
                }
            },
        }
    )
