"""The payment channels: providers built from settings.PAYMENT_PROVIDERS, by channel name.

Like ``django.contrib.auth.hashers``: a setting of dotted paths, imported once and
cached, validated by a system check. Only the channels of PAYMENT_CHANNELS_ENABLED take
payments; with DEBUG and no channel configured, the sandbox does. A payment made through
a creator's own merchant account is settled by ``provider_of`` with that account's keys.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from payments.models import NATIVE_ATTEMPTS
from payments.providers.base import PaymentMethodInvalid, PaymentProvider
from payments_project.errors import ServiceError


class ChannelNotEnabled(ServiceError):
    code = "payment_channel_not_enabled"
    http_status = 400

    def __init__(self, message: str, *, channel: str) -> None:
        super().__init__(message)
        self.channel = channel


def attempt_model(channel: str) -> type | None:
    """The model of ``channel``'s attempts, run here or only shown; None if unknown."""
    if channel in NATIVE_ATTEMPTS:
        return NATIVE_ATTEMPTS[channel]
    if channel in settings.PAYMENT_PROVIDERS:
        return _provider(channel).attempt_model
    return None


def enabled_channels() -> tuple[str, ...]:
    configured = tuple(settings.PAYMENT_CHANNELS_ENABLED)
    if configured:
        return configured
    return ("sandbox",) if settings.DEBUG else ()


def default_channel() -> str:
    enabled = enabled_channels()
    if settings.DEFAULT_PAYMENT_CHANNEL in enabled or not enabled:
        return settings.DEFAULT_PAYMENT_CHANNEL
    return enabled[0]


@functools.cache
def _provider(channel: str) -> PaymentProvider:
    return import_string(settings.PAYMENT_PROVIDERS[channel])()


def get_provider(channel: str) -> PaymentProvider:
    """The provider of an enabled channel; ChannelNotEnabled otherwise."""
    if channel not in enabled_channels() or channel not in settings.PAYMENT_PROVIDERS:
        raise ChannelNotEnabled(
            f"Payment channel {channel!r} is not enabled.", channel=channel or "unknown"
        )
    return _provider(channel)


def get_provider_any(channel: str) -> PaymentProvider:
    """The provider of a known channel, enabled or not: for settling what it already did."""
    if channel not in settings.PAYMENT_PROVIDERS:
        raise ChannelNotEnabled(f"Unknown payment channel {channel!r}.", channel=channel)
    return _provider(channel)


def provider_of(channel: str, integration_bid: str = "") -> PaymentProvider:
    """The provider that speaks for a payment of ``channel`` made through
    ``integration_bid`` (a creator's own merchant account), or through the platform's
    account when it is empty: its keys call the provider and verify its notifications.
    Enabled or not, like ``get_provider_any``: what was paid is settled with the keys
    that took it."""
    if not integration_bid:
        return get_provider_any(channel)
    from payments.integrations import provider_for

    return provider_for(channel, integration_bid)


def resolve(channel: str | None, method: str | None, *, fallback: str | None) -> tuple[str, str]:
    """The (channel, method) a payment request means.

    ``channel`` or ``method`` may be a ``provider:method`` hint (``stripe:checkout_session``).
    Without a channel, ``fallback`` (the order's channel) is used when enabled, else the
    default channel. Without a method, the channel's default method.
    """
    channel = (channel or "").strip()
    method = (method or "").strip()
    for hint in (channel, method):
        if ":" in hint:
            hinted_channel, _, hinted_method = hint.partition(":")
            if channel and ":" not in channel and channel != hinted_channel:
                raise PaymentMethodInvalid(
                    f"Method {method!r} belongs to {hinted_channel!r}, not {channel!r}.",
                    channel=channel,
                )
            channel, method = hinted_channel, hinted_method or method.partition(":")[2]
            break
    if not channel:
        channel = fallback if fallback in enabled_channels() else default_channel()
    provider = get_provider(channel)
    method = method or provider.default_method
    if method not in provider.methods:
        raise PaymentMethodInvalid(
            f"Channel {channel!r} has no method {method!r}; it has {', '.join(provider.methods)}.",
            channel=channel,
        )
    return channel, method


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs) -> None:
    if setting in ("PAYMENT_PROVIDERS", "PAYMENT_NOTIFY_BASE_URL") or setting.startswith(
        ("PINGXX_", "STRIPE_", "ALIPAY_", "WECHATPAY_", "PAYMENT_CREDENTIALS")
    ):
        _provider.cache_clear()
        from payments.integrations import forget_providers

        forget_providers()
