"""System checks of what this app loads from dotted paths: each enabled channel's
provider, and the payment event sink."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from payments import registry
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
