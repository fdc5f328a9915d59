"""The Stripe provider's configuration: the protocol, its client, the registry."""

from __future__ import annotations

import time

import pytest
import stripe

from payments import registry
from payments.models import StripeOrder
from payments.providers.base import PaymentProvider, ProviderUnavailable
from payments.providers.stripe import StripeProvider
from tests.payments.providers.stripe.helpers import SECRET_KEY, payment_request


def test_provider_implements_the_protocol(provider):
    assert isinstance(provider, PaymentProvider)
    assert provider.channel == "stripe"
    assert provider.methods == ("payment_intent", "checkout_session")
    assert provider.default_method == "payment_intent"
    assert provider.attempt_model is StripeOrder
    assert provider.app_id == ""
    assert provider.livemode is False
    assert {"usd", "jpy", "eur", "kwd", "cny", "huf", "twd"} <= provider.currencies
    assert not {"isk", "mga", "ugx"} & provider.currencies


@pytest.mark.parametrize(
    ("key", "live"),
    [
        ("sk_live_" + "0" * 24, True),
        ("rk_live_" + "0" * 24, True),
        ("sk_test_" + "0" * 24, False),
        ("rk_test_" + "0" * 24, False),
    ],
)
def test_livemode_follows_the_secret_key(stripe_settings, key, live):
    stripe_settings.STRIPE_SECRET_KEY = key
    assert StripeProvider().livemode is live


def test_client_has_timeouts_retries_and_the_configured_base(provider, fake):
    requestor = provider.client._requestor
    assert isinstance(requestor._client, stripe.RequestsClient)
    assert requestor._client._timeout == (5.0, 25.0)
    assert requestor._options.max_network_retries == 2
    assert requestor._options.base_addresses["api"] == fake.base_url
    assert requestor._options.api_key == SECRET_KEY


def test_the_read_timeout_really_applies(stripe_settings, fake, monkeypatch):
    monkeypatch.setattr(StripeProvider, "read_timeout", 0.3)
    monkeypatch.setattr(StripeProvider, "max_network_retries", 0)
    provider = StripeProvider()
    fake.delay_next(2)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        provider.start_payment(payment_request())
    assert time.monotonic() - started < 1.5


def test_registry_rebuilds_the_provider_when_settings_change(stripe_settings):
    first = registry.get_provider_any("stripe")
    assert isinstance(first, StripeProvider)
    assert registry.get_provider_any("stripe") is first
    stripe_settings.STRIPE_API_BASE = "http://127.0.0.1:9/"
    second = registry.get_provider_any("stripe")
    assert second is not first
    assert second.client._requestor._options.base_addresses["api"] == "http://127.0.0.1:9"
