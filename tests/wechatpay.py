"""WeChat Pay fixtures, suite-wide: the merchant key and a self-signed platform
certificate made once a session, the loopback API, the settings that point the
wechatpay channel at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payments.providers.wechatpay import WechatpayProvider
from tests.certificates import self_signed_certificate
from tests.payments.wechatpay_double import WechatpayDouble

WECHATPAY_APP_ID = "wxd678efh567hg6787"
WECHATPAY_MCH_ID = "1230000109"
WECHATPAY_MERCHANT_SERIAL_NO = "444F4864EA9B34415A1B2C3D4E5F60718293A4B5"
WECHATPAY_API_V3_KEY = "a12d3924fd499edac8a5efc0123456ab"  # 32 bytes


@dataclass(frozen=True)
class WechatpayKeys:
    merchant: rsa.RSAPrivateKey  # signs our requests; the double holds its public half
    platform: rsa.RSAPrivateKey  # WeChat Pay's: signs answers and notifications
    platform_cert: x509.Certificate  # what we hold of it
    stranger: rsa.RSAPrivateKey  # anyone else's (another merchant's, a forger's)

    @property
    def platform_serial(self) -> str:
        return format(self.platform_cert.serial_number, "X")


def wechatpay_private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def wechatpay_cert_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


@pytest.fixture(scope="session")
def wechatpay_keys() -> WechatpayKeys:
    merchant, platform, stranger = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)
    )
    return WechatpayKeys(merchant, platform, self_signed_certificate(platform), stranger)


@pytest.fixture
def wechatpay_double(wechatpay_keys: WechatpayKeys) -> Iterator[WechatpayDouble]:
    with WechatpayDouble(
        mch_id=WECHATPAY_MCH_ID,
        app_id=WECHATPAY_APP_ID,
        merchant_serial_no=WECHATPAY_MERCHANT_SERIAL_NO,
        merchant_public_key=wechatpay_keys.merchant.public_key(),
        platform_key=wechatpay_keys.platform,
        platform_serial=wechatpay_keys.platform_serial,
        api_v3_key=WECHATPAY_API_V3_KEY,
    ) as double:
        yield double


@pytest.fixture
def wechatpay_settings(settings, wechatpay_keys: WechatpayKeys, wechatpay_double):
    """Settings pointing the wechatpay channel at the double (the registry cache clears)."""
    settings.WECHATPAY_BASE_URL = wechatpay_double.base_url
    settings.WECHATPAY_APP_ID = WECHATPAY_APP_ID
    settings.WECHATPAY_MCH_ID = WECHATPAY_MCH_ID
    settings.WECHATPAY_MERCHANT_SERIAL_NO = WECHATPAY_MERCHANT_SERIAL_NO
    settings.WECHATPAY_PRIVATE_KEY = wechatpay_private_pem(wechatpay_keys.merchant)
    settings.WECHATPAY_PRIVATE_KEY_PATH = ""
    settings.WECHATPAY_API_V3_KEY = WECHATPAY_API_V3_KEY
    settings.WECHATPAY_PLATFORM_CERT = wechatpay_cert_pem(wechatpay_keys.platform_cert)
    settings.WECHATPAY_PLATFORM_CERT_PATH = ""
    settings.PAYMENT_NOTIFY_BASE_URL = "https://pay.example.test"
    return settings


@pytest.fixture
def wechatpay(wechatpay_settings) -> WechatpayProvider:
    return WechatpayProvider()


@pytest.fixture
def wechatpay_channel(wechatpay_settings):
    """WeChat Pay, pointed at the double, as the only and default channel."""
    wechatpay_settings.PAYMENT_CHANNELS_ENABLED = ["wechatpay"]
    wechatpay_settings.DEFAULT_PAYMENT_CHANNEL = "wechatpay"
    return wechatpay_settings


def creator_fields(keys: WechatpayKeys, *, base_url: str = "", mch_id: str = "1900000001"):
    """(public, secret) fields of a creator's own WeChat Pay merchant: its own API v3 key
    and merchant key (``keys.stranger``), WeChat Pay's platform certificate."""
    public = {"app_id": "wx1111222233334444", "mch_id": mch_id,
              "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
              "base_url": base_url}  # fmt: skip
    secret = {"api_v3_key": "c" * 32, "private_key": wechatpay_private_pem(keys.stranger),
              "platform_cert": wechatpay_cert_pem(keys.platform_cert)}  # fmt: skip
    return public, secret


def creator_double(keys: WechatpayKeys, public: dict, secret: dict) -> WechatpayDouble:
    """WeChat Pay as that creator's merchant sees it (start it with ``with``)."""
    return WechatpayDouble(
        mch_id=public["mch_id"], app_id=public["app_id"],
        merchant_serial_no=public["merchant_serial_no"],
        merchant_public_key=keys.stranger.public_key(),
        platform_key=keys.platform, platform_serial=keys.platform_serial,
        api_v3_key=secret["api_v3_key"],
    )  # fmt: skip
