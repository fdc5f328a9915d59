"""Alipay fixtures, suite-wide: RSA keys made once a session, the loopback gateway, the
settings that point the alipay channel at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payments.providers.alipay import AlipayProvider
from tests.payments.alipay_double import AlipayDouble

ALIPAY_APP_ID = "2021000000000001"
NOTIFY_BASE = "https://pay.example.test"


@dataclass(frozen=True)
class AlipayKeys:
    app: rsa.RSAPrivateKey  # ours: signs requests; the double holds its public half
    alipay: rsa.RSAPrivateKey  # Alipay's: signs answers and notifications
    stranger: rsa.RSAPrivateKey  # anyone else's


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.fixture(scope="session")
def alipay_keys() -> AlipayKeys:
    return AlipayKeys(new_key(), new_key(), new_key())


@pytest.fixture
def alipay_double(alipay_keys: AlipayKeys) -> Iterator[AlipayDouble]:
    with AlipayDouble(
        app_id=ALIPAY_APP_ID,
        app_public_key=alipay_keys.app.public_key(),
        alipay_key=alipay_keys.alipay,
    ) as double:
        yield double


@pytest.fixture
def alipay_settings(settings, alipay_keys: AlipayKeys, alipay_double: AlipayDouble):
    """Settings pointing the alipay channel at the double (the registry cache clears)."""
    settings.ALIPAY_GATEWAY_URL = alipay_double.gateway_url
    settings.ALIPAY_APP_ID = ALIPAY_APP_ID
    settings.ALIPAY_APP_PRIVATE_KEY = private_pem(alipay_keys.app)
    settings.ALIPAY_APP_PRIVATE_KEY_PATH = ""
    settings.ALIPAY_PUBLIC_KEY = public_pem(alipay_keys.alipay)
    settings.ALIPAY_PUBLIC_KEY_PATH = ""
    settings.PAYMENT_NOTIFY_BASE_URL = NOTIFY_BASE
    return settings


@pytest.fixture
def alipay(alipay_settings) -> AlipayProvider:
    return AlipayProvider()


@pytest.fixture
def alipay_channel(alipay_settings):
    """Alipay, pointed at the double, as the only and default channel."""
    alipay_settings.PAYMENT_CHANNELS_ENABLED = ["alipay"]
    alipay_settings.DEFAULT_PAYMENT_CHANNEL = "alipay"
    return alipay_settings
