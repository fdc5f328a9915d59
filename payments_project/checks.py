"""System checks that turn bad configuration into errors naming the variable to fix.

They run with every management command (``manage.py check``, ``migrate``,
``runserver``), so a misconfigured deployment refuses to start instead of failing on
the first payment.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

from Crypto.PublicKey import RSA
from django.conf import settings
from django.core import checks

from payments_project.config import (
    BASE_DIR,
    DEVELOPMENT_SECRET_KEY,
    RETIRED,
    approval_threshold_entries,
)
from payments_project.money import CURRENCY_EXPONENTS

# What each channel needs before it can take payments: (variable, or the pair of
# alternatives that hold the same value).
REQUIRED = {
    "pingxx": (
        ("PINGXX_SECRET_KEY",),
        ("PINGXX_APP_ID",),
        ("PINGXX_PRIVATE_KEY", "PINGXX_PRIVATE_KEY_PATH"),
        ("PINGXX_WEBHOOK_PUBLIC_KEY", "PINGXX_WEBHOOK_PUBLIC_KEY_PATH"),
    ),
    "stripe": (
        ("STRIPE_SECRET_KEY",),
        ("STRIPE_PUBLISHABLE_KEY",),
        ("STRIPE_WEBHOOK_SECRET",),
    ),
    "sandbox": (),
    "alipay": (
        ("ALIPAY_APP_ID",),
        ("ALIPAY_APP_PRIVATE_KEY", "ALIPAY_APP_PRIVATE_KEY_PATH"),
        ("ALIPAY_PUBLIC_KEY", "ALIPAY_PUBLIC_KEY_PATH"),
        ("PAYMENT_NOTIFY_BASE_URL",),
    ),
    "wechatpay": (
        ("WECHATPAY_APP_ID",),
        ("WECHATPAY_MCH_ID",),
        ("WECHATPAY_MERCHANT_SERIAL_NO",),
        ("WECHATPAY_PRIVATE_KEY", "WECHATPAY_PRIVATE_KEY_PATH"),
        ("WECHATPAY_API_V3_KEY",),
        ("WECHATPAY_PLATFORM_CERT", "WECHATPAY_PLATFORM_CERT_PATH"),
        ("PAYMENT_NOTIFY_BASE_URL",),
    ),
}

# The shortest secret key Stripe issues (dj-stripe refuses shorter ones).
STRIPE_SECRET_KEY_MIN_LENGTH = len("sk_test_") + 24

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# A Celery rate: tasks per second, minute or hour.
RATE = re.compile(r"[0-9]+(\.[0-9]+)?/[smh]")


class KeyUnreadable(Exception):
    pass


def read_pem(text_variable: str, path_variable: str) -> tuple[str, str]:
    """The PEM text of a key given inline or as a file, and the variable it came from.

    Inline keys may carry literal ``\\n`` sequences (one-line environment values).
    Returns ("", "") when neither is set. Raises KeyUnreadable for a missing file.
    """
    text = getattr(settings, text_variable, "") or ""
    path = getattr(settings, path_variable, "") or ""
    if text:
        return text.replace("\\n", "\n"), text_variable
    if path:
        file = Path(path) if Path(path).is_absolute() else BASE_DIR / path
        try:
            return file.read_text(encoding="utf-8"), path_variable
        except OSError as exc:
            raise KeyUnreadable(f"{path_variable}: cannot read {path!r} ({exc.strerror}).") from exc
    return "", ""


def _is_set(variable: str) -> bool:
    return bool(getattr(settings, variable, ""))


@checks.register("payments")
def check_channels(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    KNOWN_CHANNELS = tuple(settings.PAYMENT_PROVIDERS)
    enabled = list(settings.PAYMENT_CHANNELS_ENABLED)
    for channel in enabled:
        if channel not in KNOWN_CHANNELS:
            errors.append(
                checks.Error(
                    f"PAYMENT_CHANNELS_ENABLED names an unknown channel {channel!r}.",
                    hint=f"Known channels: {', '.join(KNOWN_CHANNELS)}.",
                    id="config.E001",
                )
            )
    default = settings.DEFAULT_PAYMENT_CHANNEL
    if default not in KNOWN_CHANNELS:
        errors.append(
            checks.Error(
                f"DEFAULT_PAYMENT_CHANNEL is an unknown channel {default!r}.",
                hint=f"Known channels: {', '.join(KNOWN_CHANNELS)}.",
                id="config.E001",
            )
        )
    elif enabled and default not in enabled:
        errors.append(
            checks.Error(
                f"DEFAULT_PAYMENT_CHANNEL {default!r} is not in PAYMENT_CHANNELS_ENABLED.",
                hint="Enable it, or choose one of the enabled channels as the default.",
                id="config.E002",
            )
        )
    for channel in enabled:
        for alternatives in REQUIRED.get(channel, ()):
            if not any(_is_set(variable) for variable in alternatives):
                errors.append(
                    checks.Error(
                        f"The {channel} channel is enabled but {' or '.join(alternatives)} "
                        "is not set.",
                        hint="Set it, or remove the channel from PAYMENT_CHANNELS_ENABLED.",
                        id="config.E003",
                    )
                )
    if "sandbox" in enabled and not settings.DEBUG:
        errors.append(
            checks.Error(
                "PAYMENT_CHANNELS_ENABLED enables the sandbox channel with DEBUG off.",
                hint="The sandbox confirms payments without money: never in production.",
                id="config.E010",
            )
        )
    if settings.PAY_ORDER_EXPIRE_SECONDS <= 0:
        errors.append(
            checks.Error(
                "PAY_ORDER_EXPIRE_SECONDS must be a positive number of seconds.",
                id="config.E011",
            )
        )
    return errors


@checks.register("payments")
def check_keys(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every PEM key that is set must parse, whether or not its channel is enabled."""
    errors: list[checks.CheckMessage] = []
    for text_variable, path_variable, private in (
        ("PINGXX_PRIVATE_KEY", "PINGXX_PRIVATE_KEY_PATH", True),
        ("PINGXX_WEBHOOK_PUBLIC_KEY", "PINGXX_WEBHOOK_PUBLIC_KEY_PATH", False),
    ):
        if _is_set(text_variable) and _is_set(path_variable):
            errors.append(
                checks.Error(
                    f"Both {text_variable} and {path_variable} are set.",
                    hint="Give the key one way only.",
                    id="config.E005",
                )
            )
            continue
        try:
            pem, source = read_pem(text_variable, path_variable)
        except KeyUnreadable as exc:
            errors.append(checks.Error(str(exc), id="config.E006"))
            continue
        if not pem:
            continue
        kind = "an RSA private key" if private else "an RSA public key"
        try:
            key = RSA.import_key(pem)
        except (ValueError, IndexError, TypeError):
            errors.append(
                checks.Error(
                    f"{source} does not hold a PEM key that parses; expected {kind}.",
                    hint="Paste the whole PEM block, BEGIN and END lines included.",
                    id="config.E004",
                )
            )
            continue
        if key.has_private() != private:
            errors.append(
                checks.Error(
                    f"{source} holds a {'private' if key.has_private() else 'public'} key; "
                    f"expected {kind}.",
                    id="config.E004",
                )
            )
    return errors


@checks.register("payments")
def check_stripe_keys(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    secret = settings.STRIPE_SECRET_KEY
    publishable = settings.STRIPE_PUBLISHABLE_KEY
    webhook_secret = settings.STRIPE_WEBHOOK_SECRET
    if secret and (
        not secret.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_"))
        or len(secret) < STRIPE_SECRET_KEY_MIN_LENGTH
    ):
        errors.append(
            checks.Error(
                "STRIPE_SECRET_KEY is not a Stripe secret key.",
                hint="It starts with sk_test_ or sk_live_ (rk_ for restricted keys).",
                id="config.E007",
            )
        )
    if publishable and not publishable.startswith(("pk_test_", "pk_live_")):
        errors.append(
            checks.Error(
                "STRIPE_PUBLISHABLE_KEY is not a Stripe publishable key.",
                hint="It starts with pk_test_ or pk_live_.",
                id="config.E007",
            )
        )
    if webhook_secret and not webhook_secret.startswith("whsec_"):
        errors.append(
            checks.Error(
                "STRIPE_WEBHOOK_SECRET is not a webhook signing secret.",
                hint="It starts with whsec_.",
                id="config.E007",
            )
        )
    if secret and publishable and ("_live_" in secret) != ("_live_" in publishable):
        errors.append(
            checks.Error(
                "STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY belong to different modes "
                "(one live, one test).",
                id="config.E007",
            )
        )
    currency = settings.STRIPE_DEFAULT_CURRENCY
    if currency not in CURRENCY_EXPONENTS:
        errors.append(
            checks.Error(
                f"STRIPE_DEFAULT_CURRENCY {currency!r} is not a lower-case ISO 4217 code.",
                hint="For example usd, eur, cny.",
                id="config.E008",
            )
        )
    return errors


@checks.register("payments")
def check_api_bases(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for variable in ("PINGXX_API_BASE", "STRIPE_API_BASE"):
        url = urlparse(getattr(settings, variable))
        if url.scheme not in ("http", "https") or not url.netloc:
            errors.append(
                checks.Error(
                    f"{variable} is not an http(s) URL.",
                    hint="For example https://api.stripe.com.",
                    id="config.E009",
                )
            )
        elif url.scheme == "http" and not settings.DEBUG and url.hostname not in LOOPBACK:
            errors.append(
                checks.Error(
                    f"{variable} uses plain http to a remote host with DEBUG off.",
                    hint="Provider APIs are reached over https; http is for loopback doubles.",
                    id="config.E009",
                )
            )
    return errors


@checks.register("payments")
def check_secret_key(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Not only with --deploy: a process with DEBUG off must not start on the dev key."""
    if settings.DEBUG:
        return []
    key = settings.SECRET_KEY
    if key == DEVELOPMENT_SECRET_KEY or key.startswith("django-insecure") or len(key) < 50:
        return [
            checks.Error(
                "SECRET_KEY is a development key (or shorter than 50 characters) and DEBUG is off.",
                hint="Generate one: python -c 'import secrets; print(secrets.token_urlsafe(50))'",
                id="config.E012",
            )
        ]
    return []


@checks.register("payments")
def check_approval_thresholds(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """REFUND_APPROVAL_THRESHOLDS: CURRENCY:MINOR_UNITS pairs of known currencies."""
    raw = getattr(settings, "REFUND_APPROVAL_THRESHOLDS_RAW", None)
    if raw is None:
        return []
    thresholds, problems = approval_threshold_entries(raw)
    problems += [
        f"{currency.upper()} is not an ISO 4217 currency in circulation"
        for currency in thresholds
        if currency != "*" and currency not in CURRENCY_EXPONENTS
    ]
    return [
        checks.Error(
            f"REFUND_APPROVAL_THRESHOLDS: {problem}.",
            hint="Set it to comma-separated CURRENCY:MINOR_UNITS pairs, e.g. "
            "CNY:100000,USD:15000 ('*:N' for every other currency).",
            id="config.E014",
        )
        for problem in problems
    ]


@checks.register("payments")
def check_payment_policies(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    policy = getattr(settings, "PAY_DUPLICATE_PAYMENT_POLICY", "refund")
    if policy not in ("refund", "flag"):
        errors.append(
            checks.Error(
                f"PAY_DUPLICATE_PAYMENT_POLICY: {policy!r} is neither 'refund' nor 'flag'.",
                id="config.E015",
            )
        )
    minimums = {
        "RECONCILE_MAX_TRIES": 1,
        "RECONCILE_MAX_PENDING_HOURS": 1,
        "WEBHOOK_REJECTED_ROWS_PER_HOUR": 1,
        "WEBHOOK_MAX_BODY_BYTES": 1024,  # below it, every genuine webhook is refused
        "WEBHOOK_SWEEP_AFTER_SECONDS": 10,  # below it, the sweeper races fresh tasks
        "WEBHOOK_APPLY_RETRIES": 0,
    }
    for name, minimum in minimums.items():
        if getattr(settings, name, minimum) < minimum:
            errors.append(checks.Error(f"{name} must be {minimum} or more.", id="config.E016"))
    rate = settings.CELERY_TASK_ANNOTATIONS["payments.sync_stripe_event"]["rate_limit"]
    if not RATE.fullmatch(rate):
        errors.append(
            checks.Error(
                f"STRIPE_SYNC_RATE_LIMIT: {rate!r} is not a rate such as 10/s or 300/m.",
                id="config.E018",
            )
        )
    return errors


@checks.register("payments")
def check_retired_variables(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A variable this release no longer reads is still set: say what replaces it."""
    import os

    return [
        checks.Warning(
            f"{name} is set, but is no longer read.",
            hint=f"Use {replacement} instead.",
            id="config.W001",
        )
        for name, replacement in RETIRED.items()
        if os.environ.get(name)
    ]
