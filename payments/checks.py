"""System checks of what this app loads from dotted paths (each enabled channel's
provider, the payment event sink), of the keys that seal creators' merchant credentials,
and, with the database, of the creators' merchant accounts themselves."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.db.utils import OperationalError, ProgrammingError
from django.utils.module_loading import import_string

from payments import credentials, integrations, registry
from payments.merchants import PaymentIntegration
from payments.providers.base import PROVIDER_ATTRIBUTES
from payments.sink import SINK_ATTRIBUTES


@checks.register("payments")
def check_providers(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    enabled = [c for c in registry.enabled_channels() if c in settings.PAYMENT_PROVIDERS]
    return provider_errors(enabled)


def provider_errors(channels: list[str]) -> list[checks.CheckMessage]:
    """Each enabled channel's provider class imports and implements the protocol."""
    errors: list[checks.CheckMessage] = []
    for channel in channels:
        path = settings.PAYMENT_PROVIDERS[channel]
        try:
            provider_class = import_string(path)
        except ImportError as exc:
            errors.append(
                checks.Error(
                    f"PAYMENT_PROVIDERS[{channel!r}]: cannot import {path!r} ({exc}).",
                    id="config.E013",
                )
            )
            continue
        missing = [name for name in PROVIDER_ATTRIBUTES if not hasattr(provider_class, name)]
        if missing or getattr(provider_class, "channel", None) != channel:
            errors.append(
                checks.Error(
                    f"PAYMENT_PROVIDERS[{channel!r}]: {path} is not a payment provider for "
                    f"{channel!r} (missing: {', '.join(missing) or 'its channel name'}).",
                    id="config.E013",
                )
            )
    return errors


@checks.register("payments")
def check_sink(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """PAYMENT_EVENT_SINK imports and has every method of the sink port."""
    path = getattr(settings, "PAYMENT_EVENT_SINK", "")
    try:
        sink_class = import_string(path)
    except ImportError as exc:
        return [
            checks.Error(f"PAYMENT_EVENT_SINK: cannot import {path!r} ({exc}).", id="config.E017")
        ]
    missing = [name for name in SINK_ATTRIBUTES if not hasattr(sink_class, name)]
    if missing:
        return [
            checks.Error(
                f"PAYMENT_EVENT_SINK: {path} is no payment event sink "
                f"(missing: {', '.join(missing)}).",
                id="config.E017",
            )
        ]
    return []


@checks.register("payments")
def check_credentials_keys(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every key of PAYMENT_CREDENTIALS_KEYS is a Fernet key."""
    return [checks.Error(problem, id="config.E023") for problem in credentials.key_problems()]


@checks.register("payments", checks.Tags.database)
def check_integrations(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Creators' active merchant accounts can be used: their credentials open with
    PAYMENT_CREDENTIALS_KEYS, their channel's provider accepts them, and their channel is
    enabled. Runs with ``check --database`` and before ``migrate``; nothing to say before
    the table exists."""
    if not databases:
        return []
    try:
        active = list(
            PaymentIntegration.objects.filter(active=True).values_list("channel", flat=True)
        )
        if not active:
            return []
        return key_errors(len(active)) + channel_warnings(active)
    except (OperationalError, ProgrammingError):
        return []  # no table yet: a database before its first migrate


def key_errors(active: int) -> list[checks.CheckMessage]:
    """config.E024 without a key; else config.E025 per active integration that cannot be
    used as stored (a malformed key is config.E023's alone)."""
    if not credentials.configured_keys():
        return [
            checks.Error(
                f"PAYMENT_CREDENTIALS_KEYS is not set, and {active} active payment "
                "integration(s) hold credentials sealed under it: their orders cannot be "
                "paid, refunded or reconciled.",
                hint="Set the key they were sealed with (docs/operations.md).",
                id="config.E024",
            )
        ]
    if credentials.key_problems():
        return []
    return [
        checks.Error(
            f"Payment integration {row.integration_bid} ({row.channel}, creator "
            f"{row.creator_bid}): {problem}",
            hint=(
                "Put back the key that sealed it, or correct it (its credentials entered "
                "again) in the admin, or deactivate it."
            ),
            id="config.E025",
        )
        for row, problem in integrations.integration_problems()
    ]


def channel_warnings(active: list[str]) -> list[checks.CheckMessage]:
    """config.W003 per channel of active integrations that is not enabled."""
    enabled = set(registry.enabled_channels())
    return [
        checks.Warning(
            f"{active.count(channel)} active payment integration(s) on {channel}, which "
            "PAYMENT_CHANNELS_ENABLED does not enable: their creators' orders cannot be paid "
            "on it.",
            hint=f"Enable {channel}, or deactivate them.",
            id="config.W003",
        )
        for channel in sorted(set(active) - enabled)
    ]
