"""The Stripe provider against a loopback fake of Stripe's API (tests/payments/stripe_fakes.py)."""

from __future__ import annotations

import pytest
import stripe

from payments.providers.stripe import StripeProvider
from tests.payments.providers.stripe.helpers import (
    CANCEL_URL,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    SUCCESS_URL,
    WEBHOOK_SECRET,
)
from tests.payments.stripe_fakes import FakeStripe


@pytest.fixture(autouse=True)
def _no_retry_sleep(monkeypatch):
    """The SDK's back-off between retries, without the waiting."""
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0)


@pytest.fixture
def fake():
    with FakeStripe(secret_key=SECRET_KEY) as fake:
        yield fake


@pytest.fixture
def stripe_settings(settings, fake):
    settings.STRIPE_API_BASE = fake.base_url
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_CHECKOUT_SUCCESS_URL = SUCCESS_URL
    settings.STRIPE_CHECKOUT_CANCEL_URL = CANCEL_URL
    settings.ALLOWED_HOSTS = ["shop.example.com", ".courses.example.org", "*"]
    settings.DEBUG = False
    return settings


@pytest.fixture
def provider(stripe_settings) -> StripeProvider:
    return StripeProvider()
