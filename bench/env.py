"""The environment every process of the benchmark gets: the service's variables
(payments_project/variables.py) as a production deployment would set them, on the
scratch database, the Redis broker and the provider doubles."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from Crypto.PublicKey import RSA

DEFAULT_DATABASE_URL = "mysql://root@127.0.0.1:3306/bench_payments"
BROKER_URL = "redis://127.0.0.1:6379/13"
CACHE_URL = "redis://127.0.0.1:6379/14"

PINGXX_SECRET_KEY = "sk_test_bench0000000000000000"  # noqa: S105 (the double's)
PINGXX_APP_ID = "app_bench0000000000"
STRIPE_SECRET_KEY = "sk_test_" + "bench".ljust(32, "0")
STRIPE_PUBLISHABLE_KEY = "pk_test_" + "bench".ljust(32, "0")
STRIPE_WEBHOOK_SECRET = "whsec_" + "bench".ljust(32, "0")


@dataclass(frozen=True)
class Keys:
    merchant: RSA.RsaKey  # signs our requests to Ping++; its double holds the public half
    pingxx: RSA.RsaKey  # Ping++'s: signs the webhooks; the service holds the public half
    django: str  # SECRET_KEY, the same in every process (the staff session is signed)


def keys() -> Keys:
    # 2048 bits, as Ping++'s keys are: the service verifies what production verifies.
    return Keys(
        merchant=RSA.generate(2048),
        pingxx=RSA.generate(2048),
        django="bench-" + secrets.token_urlsafe(48),
    )


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
        if not key.startswith(("DJANGO_", "DATABASE_", "PINGXX_", "STRIPE_", "CELERY_"))
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
            "PAYMENT_CHANNELS_ENABLED": "pingxx,stripe,sandbox",
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
