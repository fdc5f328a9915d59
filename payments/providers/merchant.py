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
from urllib.parse import urlsplit

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


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def merchant_url_problem(url: str, *, known_hosts: frozenset[str], configured: str) -> str:
    """Why an API URL a creator's integration gives cannot be used ("" when it can): it
    must be https to one of the provider's own hosts, or the platform's configured URL's
    own scheme and host (any loopback address when that is one: a double in tests). Keys
    are never sent elsewhere, and
    an integration cannot make this service call an address of its choosing."""
    if not url:
        return ""
    parts, mine = urlsplit(url), urlsplit(configured or "")
    if parts.scheme == "https" and parts.hostname in known_hosts:
        return ""
    if mine.hostname and (parts.scheme, parts.netloc) == (mine.scheme, mine.netloc):
        return ""
    if mine.hostname in LOOPBACK and parts.hostname in LOOPBACK and parts.scheme == mine.scheme:
        return ""  # the platform's own gateway is a double on loopback: so may a creator's
    hosts = ", ".join(sorted(known_hosts))
    return f"the API URL must be https on {hosts}, or the platform's own ({url!r} is neither)"


def notify_url(channel: str, integration_bid: str = "") -> str:
    """Where the provider sends ``channel``'s notifications for the platform's account
    (``/webhooks/alipay/``) or for one integration's (``/webhooks/alipay/<bid>/``)."""
    base = settings.PAYMENT_NOTIFY_BASE_URL.rstrip("/")
    tail = f"{integration_bid}/" if integration_bid else ""
    return f"{base}/webhooks/{channel}/{tail}"
