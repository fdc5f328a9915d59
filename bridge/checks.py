"""System checks of the platform bridge's settings."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from bridge.outbox import url_allowed


@checks.register("bridge")
def check_platform_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    url = settings.PLATFORM_WEBHOOK_URL
    if url and not url_allowed(url):
        errors.append(
            checks.Error(
                f"PLATFORM_WEBHOOK_URL: {url!r} is not https:// (http:// only to a loopback "
                "host, or with DEBUG on).",
                id="config.E019",
            )
        )
    if url and not settings.PLATFORM_WEBHOOK_SECRET:
        errors.append(
            checks.Error(
                "PLATFORM_WEBHOOK_URL is set without PLATFORM_WEBHOOK_SECRET: events would "
                "go unsigned.",
                id="config.E020",
            )
        )
    if settings.PLATFORM_TOKEN_STORE_URL and not settings.PLATFORM_JWT_SECRET:
        errors.append(
            checks.Error(
                "PLATFORM_TOKEN_STORE_URL is set without PLATFORM_JWT_SECRET: platform tokens "
                "are not read at all.",
                id="config.E021",
            )
        )
    if (
        settings.PLATFORM_JWT_SECRET
        and not settings.PLATFORM_TOKEN_STORE_URL
        and not settings.DEBUG
    ):
        errors.append(
            checks.Warning(
                "PLATFORM_JWT_SECRET is set without PLATFORM_TOKEN_STORE_URL: the platform's "
                "tokens carry no expiry, so a token would keep working after its user logged "
                "out. Point PLATFORM_TOKEN_STORE_URL at the platform's Redis.",
                id="config.W002",
            )
        )
    if settings.PLATFORM_WEBHOOK_RETRY_BASE_SECONDS < 1:
        errors.append(
            checks.Error("PLATFORM_WEBHOOK_RETRY_BASE_SECONDS must be 1 or more.", id="config.E022")
        )
    return errors
