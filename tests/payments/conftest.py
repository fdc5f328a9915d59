"""Ping++ fixtures: RSA keys made once a session, the loopback double, the settings.
(Alipay's and WeChat Pay's are suite-wide: tests/alipay.py, tests/wechatpay.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from Crypto.PublicKey import RSA

from payments.providers.pingxx import PingxxProvider
from tests.payments.pingxx_double import PingxxDouble

PINGXX_SECRET_KEY = "sk_test_double0000000000000000"
PINGXX_APP_ID = "app_double000000000"


@dataclass(frozen=True)
class PingxxKeys:
    merchant: RSA.RsaKey  # signs our requests; the double holds its public half
    webhook: RSA.RsaKey  # Ping++'s: signs webhooks; we hold its public half
    stranger: RSA.RsaKey  # anyone else's


def pem(key: RSA.RsaKey, *, public: bool = False) -> str:
    return (key.public_key() if public else key).export_key().decode("ascii")


@pytest.fixture(scope="session")
def pingxx_keys() -> PingxxKeys:
    return PingxxKeys(RSA.generate(1024), RSA.generate(1024), RSA.generate(1024))


@pytest.fixture
def pingxx_double(pingxx_keys: PingxxKeys) -> Iterator[PingxxDouble]:
    with PingxxDouble(
        secret_key=PINGXX_SECRET_KEY,
        app_id=PINGXX_APP_ID,
        merchant_public_key=pingxx_keys.merchant.public_key(),
        webhook_private_key=pingxx_keys.webhook,
    ) as double:
        yield double


@pytest.fixture
def pingxx_settings(settings, pingxx_keys: PingxxKeys, pingxx_double: PingxxDouble):
    """Settings pointing the pingxx channel at the double (the registry cache clears)."""
    settings.PINGXX_API_BASE = pingxx_double.base_url
    settings.PINGXX_SECRET_KEY = PINGXX_SECRET_KEY
    settings.PINGXX_APP_ID = PINGXX_APP_ID
    settings.PINGXX_PRIVATE_KEY = pem(pingxx_keys.merchant)
    settings.PINGXX_PRIVATE_KEY_PATH = ""
    settings.PINGXX_WEBHOOK_PUBLIC_KEY = pem(pingxx_keys.webhook, public=True)
    settings.PINGXX_WEBHOOK_PUBLIC_KEY_PATH = ""
    return settings


@pytest.fixture
def pingxx(pingxx_settings) -> PingxxProvider:
    return PingxxProvider()


@pytest.fixture
def pingxx_channel(pingxx_settings):
    """Ping++, pointed at the double, as the only and default channel."""
    pingxx_settings.PAYMENT_CHANNELS_ENABLED = ["pingxx"]
    pingxx_settings.DEFAULT_PAYMENT_CHANNEL = "pingxx"
    return pingxx_settings


@pytest.fixture
def queued(monkeypatch):
    """A broker is configured: tasks are sent, not run; the inbox ids sent, per task."""
    from payments import tasks
    from payments_project.celery import app

    sent: dict[str, list[int]] = {"apply": [], "sync": []}
    monkeypatch.setattr(tasks.apply_webhook_event, "delay", sent["apply"].append)
    monkeypatch.setattr(tasks.sync_stripe_event, "delay", sent["sync"].append)
    app.conf.task_always_eager = False
    try:
        yield sent
    finally:
        app.conf.task_always_eager = True
