"""The environment every process of the benchmark gets: the service's variables
(payments_project/variables.py) as a production deployment would set them, on the
scratch database, the Redis broker and the provider doubles."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from Crypto.PublicKey import RSA
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_DATABASE_URL = "mysql://root@127.0.0.1:3306/bench_payments"
BROKER_URL = "redis://127.0.0.1:6379/13"
CACHE_URL = "redis://127.0.0.1:6379/14"

PINGXX_SECRET_KEY = "sk_test_bench0000000000000000"  # noqa: S105 (the double's)
PINGXX_APP_ID = "app_bench0000000000"
ALIPAY_APP_ID = "2021000000000042"
WECHATPAY_APP_ID = "wxbench0000000042"
WECHATPAY_MCH_ID = "1900000042"
WECHATPAY_SERIAL_NO = "42" * 20
WECHATPAY_API_V3_KEY = "bench".ljust(32, "0")
STRIPE_SECRET_KEY = "sk_test_" + "bench".ljust(32, "0")
STRIPE_PUBLISHABLE_KEY = "pk_test_" + "bench".ljust(32, "0")
STRIPE_WEBHOOK_SECRET = "whsec_" + "bench".ljust(32, "0")


@dataclass(frozen=True)
class Keys:
    merchant: RSA.RsaKey  # signs our requests to Ping++; its double holds the public half
    pingxx: RSA.RsaKey  # Ping++'s: signs the webhooks; the service holds the public half
    django: str  # SECRET_KEY, the same in every process (the staff session is signed)
    alipay_app: rsa.RSAPrivateKey  # ours: signs requests to Alipay
    alipay: rsa.RSAPrivateKey  # Alipay's: signs its notifications
    wechatpay_merchant: rsa.RSAPrivateKey  # ours: signs requests to WeChat Pay
    wechatpay_platform: rsa.RSAPrivateKey  # WeChat Pay's: signs its notifications
    wechatpay_cert: x509.Certificate  # the platform certificate the service holds


def keys() -> Keys:
    # 2048 bits, as Ping++'s keys are: the service verifies what production verifies.
    from tests.certificates import self_signed_certificate

    alipay_app, alipay, merchant, platform = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(4)
    )
    return Keys(
        merchant=RSA.generate(2048),
        pingxx=RSA.generate(2048),
        django="bench-" + secrets.token_urlsafe(48),
        alipay_app=alipay_app,
        alipay=alipay,
        wechatpay_merchant=merchant,
        wechatpay_platform=platform,
        wechatpay_cert=self_signed_certificate(platform),
    )


def _pem(key: rsa.RSAPrivateKey, *, public: bool = False) -> str:
    if public:
        return (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def database() -> tuple[str, str]:
    """(DATABASE_URL, database name) from BENCH_MARIADB_URL."""
    url = os.environ.get("BENCH_MARIADB_URL") or DEFAULT_DATABASE_URL
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "bench_payments"
    return urlunsplit(parts._replace(path=f"/{name}")), name


def service_env(*, database_url: str, keys: Keys, doubles: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("DJANGO_", "DATABASE_", "PINGXX_", "STRIPE_", "CELERY_", "ALIPAY_", "WECHATPAY_")
        )
    }
    env.update(
        {
            "DJANGO_ENV_FILE": "",  # no developer .env: only what is set here
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "PYTHONUNBUFFERED": "1",
            "SECRET_KEY": keys.django,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Behind the TLS-terminating proxy of deploy/: the load sends X-Forwarded-Proto.
            "SECURE_PROXY_SSL_HEADER": "true",
            "LOG_LEVEL": "INFO",
            "WEB_CONCURRENCY": "2",
            "DATABASE_URL": database_url,
            # Persistent connections (the default, 60 s, set explicitly): a request reuses
            # its worker's connection instead of opening one.
            "DATABASE_CONN_MAX_AGE": "60",
            "CACHE_URL": CACHE_URL,
            "CELERY_BROKER_URL": BROKER_URL,
            # The limits per user would refuse a benchmark's one user after 30 orders.
            "API_THROTTLE_ORDERS": "1000000/s",
            "API_THROTTLE_PAYMENTS": "1000000/s",
            "PAYMENT_CHANNELS_ENABLED": "pingxx,stripe,sandbox,alipay,wechatpay",
            "PAYMENT_NOTIFY_BASE_URL": "https://pay.example.com",
            "ALIPAY_APP_ID": ALIPAY_APP_ID,
            "ALIPAY_APP_PRIVATE_KEY": _pem(keys.alipay_app),
            "ALIPAY_PUBLIC_KEY": _pem(keys.alipay, public=True),
            "WECHATPAY_APP_ID": WECHATPAY_APP_ID,
            "WECHATPAY_MCH_ID": WECHATPAY_MCH_ID,
            "WECHATPAY_MERCHANT_SERIAL_NO": WECHATPAY_SERIAL_NO,
            "WECHATPAY_PRIVATE_KEY": _pem(keys.wechatpay_merchant),
            "WECHATPAY_API_V3_KEY": WECHATPAY_API_V3_KEY,
            "WECHATPAY_PLATFORM_CERT": keys.wechatpay_cert.public_bytes(
                serialization.Encoding.PEM
            ).decode(),
            "DEFAULT_PAYMENT_CHANNEL": "pingxx",
            "PINGXX_API_BASE": doubles.get("pingxx", ""),
            "PINGXX_SECRET_KEY": PINGXX_SECRET_KEY,
            "PINGXX_APP_ID": PINGXX_APP_ID,
            "PINGXX_PRIVATE_KEY": keys.merchant.export_key().decode(),
            "PINGXX_WEBHOOK_PUBLIC_KEY": keys.pingxx.public_key().export_key().decode(),
            "STRIPE_API_BASE": doubles.get("stripe", ""),
            "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": STRIPE_PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        }
    )
    return env
