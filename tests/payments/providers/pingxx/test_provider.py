"""The Ping++ provider's configuration: the protocol, the SDK's globals, the keys."""

from __future__ import annotations

import os
import time

import certifi
import pingpp
import pytest
from django.core.exceptions import ImproperlyConfigured
from pingpp import api_requestor, http_client, util

from payments import registry
from payments.providers.base import EVENT_PAYMENT, PaymentProvider, ProviderUnavailable
from payments.providers.pingxx import PingxxProvider
from tests.payments.conftest import PINGXX_APP_ID, PINGXX_SECRET_KEY, pem
from tests.payments.providers.pingxx.helpers import paid_charge, payment_request, signed_headers

# ---- configuration ----


def test_provider_implements_the_protocol(pingxx):
    assert isinstance(pingxx, PaymentProvider)
    assert pingxx.currencies == frozenset({"cny"})
    assert pingxx.default_method in pingxx.methods


def test_construction_configures_the_sdk(pingxx, pingxx_double):
    assert pingpp.api_base == pingxx_double.base_url
    assert pingpp.api_key == PINGXX_SECRET_KEY
    assert pingpp.app_id == PINGXX_APP_ID
    assert "PRIVATE KEY" in pingpp.private_key
    assert pingpp.ca_bundle == certifi.where()
    assert pingpp.verify_ssl_certs is True
    assert pingpp.connect_timeout == 10
    assert pingpp.timeout == (10, 30)
    assert pingpp.max_network_retries == 0
    # What the SDK builds from them per request: requests, verifying against certifi.
    client = api_requestor.APIRequestor()._client
    assert isinstance(client, http_client.RequestsClient)
    assert util.ca_bundle_path(client._ca_bundle) == os.path.realpath(certifi.where())


def test_the_read_timeout_really_applies(pingxx_settings, pingxx_double, monkeypatch):
    monkeypatch.setattr(PingxxProvider, "read_timeout", 0.3)
    pingxx = PingxxProvider()
    pingxx_double.delay_next(2)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        pingxx.start_payment(payment_request())
    assert time.monotonic() - started < 1.5


def test_registry_rebuilds_the_provider_when_settings_change(pingxx_settings):
    first = registry.get_provider_any("pingxx")
    assert isinstance(first, PingxxProvider)
    assert registry.get_provider_any("pingxx") is first
    pingxx_settings.PINGXX_API_BASE = "http://127.0.0.1:9/"
    assert registry.get_provider_any("pingxx") is not first
    assert pingpp.api_base == "http://127.0.0.1:9"


# ---- keys ----


def test_keys_given_as_files(pingxx_settings, pingxx_keys, pingxx_double, tmp_path):
    private, public = tmp_path / "merchant.pem", tmp_path / "pingxx_public.pem"
    private.write_text(pem(pingxx_keys.merchant))
    public.write_text(pem(pingxx_keys.webhook, public=True))
    pingxx_settings.PINGXX_PRIVATE_KEY = ""
    pingxx_settings.PINGXX_PRIVATE_KEY_PATH = str(private)
    pingxx_settings.PINGXX_WEBHOOK_PUBLIC_KEY = ""
    pingxx_settings.PINGXX_WEBHOOK_PUBLIC_KEY_PATH = str(public)
    pingxx = PingxxProvider()

    charge_id = paid_charge(pingxx, pingxx_double)
    body, signature = pingxx_double.sign_event(pingxx_double.charge_succeeded_event(charge_id))
    assert pingxx.parse_webhook(body, signed_headers(signature)).kind == EVENT_PAYMENT


@pytest.mark.parametrize("broken", ["public", "garbage", "missing file"])
def test_an_unusable_private_key_is_a_configuration_error(
    pingxx_settings, pingxx_keys, tmp_path, broken
):
    if broken == "missing file":
        pingxx_settings.PINGXX_PRIVATE_KEY = ""
        pingxx_settings.PINGXX_PRIVATE_KEY_PATH = str(tmp_path / "absent.pem")
    else:
        text = pem(pingxx_keys.merchant, public=True) if broken == "public" else "garbage"
        pingxx_settings.PINGXX_PRIVATE_KEY = text
    with pytest.raises(ImproperlyConfigured) as caught:
        PingxxProvider()
    assert "PINGXX_PRIVATE_KEY" in str(caught.value)
    assert "garbage" not in str(caught.value) and "BEGIN" not in str(caught.value)
