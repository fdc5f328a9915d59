"""What a channel that collects into merchant accounts of its own (a creator's Alipay app,
a creator's WeChat Pay merchant) declares, beyond the provider protocol.

Such a provider is built either from the settings (the platform's default account) or,
by ``payments.integrations``, from one payment integration's fields; the
provider class says which fields an integration holds (``merchant_fields``), checks
them (``merchant_problems``) and builds itself from them (``for_merchant``). Each
account's notifications come to a URL of its own, so that they are verified with its
keys (``notify_url``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class MerchantFields:
    """The fields of a channel's merchant account: ``public`` ones are shown in the admin,
    ``secret`` ones are stored encrypted and never shown back; ``optional`` ones may be
    left blank (the channel's default then applies)."""

    public: tuple[str, ...]
    secret: tuple[str, ...]
    optional: frozenset[str] = frozenset()

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.public, *self.secret)

    def missing(self, public: Mapping[str, str], secret: Mapping[str, str]) -> list[str]:
        """The required fields left blank."""
        given = {**public, **secret}
        return [
            name
            for name in self.names
            if name not in self.optional and not str(given.get(name) or "").strip()
        ]


def notify_url(channel: str, integration_bid: str = "") -> str:
    """Where the provider sends ``channel``'s notifications for the platform's account
    (``/webhooks/alipay/``) or for one integration's (``/webhooks/alipay/<bid>/``)."""
    base = settings.PAYMENT_NOTIFY_BASE_URL.rstrip("/")
    tail = f"{integration_bid}/" if integration_bid else ""
    return f"{base}/webhooks/{channel}/{tail}"
