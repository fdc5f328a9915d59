"""Creators' own merchant accounts (``PaymentIntegration``): choosing one for a new
payment, storing its credentials sealed, and building the provider that speaks with
its keys.

A channel takes integrations when its provider class declares ``merchant_fields`` and
``for_merchant`` (``payments.providers.merchant``): Alipay and WeChat Pay do.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from payments import credentials
from payments.merchants import PaymentIntegration
from payments.providers.base import ProviderError
from payments_project.errors import InvalidInput, ServiceError


class IntegrationUnavailable(ProviderError):
    """An order's integration is unknown here, or its channel takes no integrations: its
    provider cannot be called with the right keys (a ProviderError, so that callers that
    retry an unreachable provider retry this too, and list it for staff in the end)."""

    code = "payment_integration_not_supported"
    http_status = 409


class IntegrationMissing(ServiceError):
    """The creator collects through accounts of its own, none of them on this channel."""

    code = "payment_integration_missing"
    http_status = 409


def provider_class(channel: str) -> type | None:
    path = settings.PAYMENT_PROVIDERS.get(channel)
    return import_string(path) if path else None


def takes_integrations(channel: str) -> bool:
    cls = provider_class(channel)
    return cls is not None and hasattr(cls, "for_merchant") and hasattr(cls, "merchant_fields")


def merchant_channels() -> tuple[str, ...]:
    return tuple(channel for channel in settings.PAYMENT_PROVIDERS if takes_integrations(channel))


def for_new_payment(*, creator_bid: str, channel: str) -> str:
    """The integration a new payment of ``creator_bid``'s course on ``channel`` goes
    through: the creator's active one on that channel; "" (the platform's account) when
    the creator has none at all. A creator with accounts of its own on other channels
    only is refused: its money never goes to the platform's account by default."""
    if not creator_bid:
        return ""
    found = list(
        PaymentIntegration.objects.filter(creator_bid=creator_bid, active=True)
        .order_by("-id")
        .values_list("integration_bid", "channel")
    )
    for bid, its_channel in found:
        if its_channel == channel:
            return bid
    if found:
        names = ", ".join(sorted({its_channel for _, its_channel in found}))
        raise IntegrationMissing(
            f"This course's creator collects payments through its own {names} account; "
            f"it has none on {channel}.",
            channel=channel,
        )
    return ""


# ---- the providers that speak with an integration's keys ----

_built: dict[str, tuple[Any, Any]] = {}
_built_lock = threading.Lock()


def provider_for(channel: str, integration_bid: str) -> Any:
    """The provider of ``channel`` with ``integration_bid``'s keys. One indexed read
    per call, so that an edited or rotated integration is used at once; the provider
    itself is built once per version of the row."""
    row = (
        PaymentIntegration.objects.filter(integration_bid=integration_bid)
        .values("channel", "updated_at", "public_config", "secret_sealed")
        .first()
    )
    if row is None or row["channel"] != channel or not takes_integrations(channel):
        raise IntegrationUnavailable(
            f"No {channel} payment integration {integration_bid!r} is known here.",
            channel=channel,
            integration=integration_bid,
        )
    version = (row["updated_at"], row["secret_sealed"])
    with _built_lock:
        cached = _built.get(integration_bid)
    if cached is not None and cached[0] == version:
        return cached[1]
    provider = provider_class(channel).for_merchant(
        integration_bid=integration_bid,
        public=dict(row["public_config"] or {}),
        secret=credentials.unseal(row["secret_sealed"]),
    )
    with _built_lock:
        _built[integration_bid] = (version, provider)
    return provider


def forget_providers() -> None:
    with _built_lock:
        _built.clear()


# ---- storing ----


@dataclass(frozen=True)
class SealedFields:
    """An integration's fields as they are stored: checked, the secret ones sealed."""

    public: dict[str, str]
    secret_sealed: str
    secret_hints: dict[str, str]


def integration_fields(
    *,
    channel: str,
    creator_bid: str,
    public: Mapping[str, str],
    secret: Mapping[str, str],
    integration: PaymentIntegration | None = None,
) -> SealedFields:
    """Check an integration's fields with the channel's provider and seal its secret
    ones. A secret field left blank keeps ``integration``'s stored value; the stored
    secret is opened only then, so that an account whose key was lost is saved again
    by entering every secret field. Raises ``InvalidInput`` or ``CredentialsLocked``."""
    cls = provider_class(channel)
    if cls is None or not takes_integrations(channel):
        raise InvalidInput(f"The {channel} channel takes no merchant accounts of creators.")
    if not creator_bid.strip():
        raise InvalidInput("A payment integration needs its creator.")
    fields = cls.merchant_fields
    public = {name: str(public.get(name) or "").strip() for name in fields.public}
    given = {name: str(secret.get(name) or "").strip() for name in fields.secret}
    kept: dict[str, str] = {}
    if integration is not None and integration.secret_sealed and not all(given.values()):
        kept = credentials.unseal(integration.secret_sealed)
    merged = {name: given[name] or kept.get(name, "") for name in fields.secret}
    problems = cls.merchant_problems(public, merged)
    if problems:
        raise InvalidInput(f"The {channel} account cannot be used: {'; '.join(problems)}.")
    return SealedFields(
        public=public,
        secret_sealed=credentials.seal(merged),
        secret_hints={name: credentials.fingerprint(value) for name, value in merged.items()},
    )


def integration_save(
    *,
    channel: str,
    creator_bid: str,
    public: Mapping[str, str],
    secret: Mapping[str, str],
    name: str = "",
    active: bool = True,
    integration: PaymentIntegration | None = None,
) -> PaymentIntegration:
    """Create or update an integration. A secret field left blank keeps its stored
    value; the whole is checked by the channel's provider before it is stored
    (``integration_fields``)."""
    sealed = integration_fields(
        channel=channel,
        creator_bid=creator_bid,
        public=public,
        secret=secret,
        integration=integration,
    )
    row = integration or PaymentIntegration(channel=channel)
    row.channel, row.creator_bid, row.name, row.active = channel, creator_bid.strip(), name, active
    row.public_config = sealed.public
    row.secret_sealed = sealed.secret_sealed
    row.secret_hints = sealed.secret_hints
    with transaction.atomic():
        row.save()
    return row


def integration_problems() -> list[tuple[PaymentIntegration, str]]:
    """Every active integration that cannot be used as stored, with why."""
    found = []
    for row in PaymentIntegration.objects.filter(active=True).order_by("id"):
        cls = provider_class(row.channel)
        if cls is None or not takes_integrations(row.channel):
            found.append((row, f"the {row.channel} channel takes no merchant accounts"))
            continue
        try:
            secret = credentials.unseal(row.secret_sealed)
        except credentials.CredentialsLocked as exc:
            found.append((row, exc.message))
            continue
        for problem in cls.merchant_problems(dict(row.public_config or {}), secret):
            found.append((row, problem))
    return found


def integrations_reseal() -> int:
    """Seal every integration's credentials under the first key; how many were."""
    count = 0
    for row in PaymentIntegration.objects.exclude(secret_sealed="").order_by("id"):
        with transaction.atomic():
            locked = PaymentIntegration.objects.select_for_update().get(pk=row.pk)
            locked.secret_sealed = credentials.reseal(locked.secret_sealed)
            locked.save(update_fields=["secret_sealed", "updated_at"])
        count += 1
    return count
