"""One Alipay application's configuration: the platform's, from the settings, or a
creator's, from a payment integration. Keys are read when a call needs them, so that an
unconfigured default never stops the service from starting."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings

from payments.providers.alipay import sign
from payments.providers.merchant import MerchantFields, merchant_url_problem, notify_url
from payments_project.checks import KeyUnreadable, read_pem

CHANNEL = "alipay"
DEFAULT_GATEWAY = "https://openapi.alipay.com/gateway.do"
# Alipay's own gateways: production and its sandbox.
GATEWAY_HOSTS = frozenset(
    {"openapi.alipay.com", "openapi-sandbox.dl.alipaydev.com", "openapi.alipaydev.com"}
)

# What a creator's integration holds, by the platform's names.
MERCHANT_FIELDS = MerchantFields(
    public=("app_id", "gateway_url"),
    secret=("app_private_key", "alipay_public_key"),
    optional=frozenset({"gateway_url"}),
)


@dataclass(frozen=True)
class AlipayConfig:
    app_id: str
    app_private_key: str = field(repr=False)
    alipay_public_key: str = field(repr=False)
    gateway_url: str
    notify_url: str
    integration_bid: str = ""

    @classmethod
    def from_settings(cls) -> AlipayConfig:
        try:
            private, _ = read_pem("ALIPAY_APP_PRIVATE_KEY", "ALIPAY_APP_PRIVATE_KEY_PATH")
            public, _ = read_pem("ALIPAY_PUBLIC_KEY", "ALIPAY_PUBLIC_KEY_PATH")
        except KeyUnreadable:
            private = public = ""  # config.E003 names the file; calls are refused
        return cls(
            app_id=settings.ALIPAY_APP_ID,
            app_private_key=private,
            alipay_public_key=public,
            gateway_url=settings.ALIPAY_GATEWAY_URL or DEFAULT_GATEWAY,
            notify_url=notify_url(CHANNEL) if settings.PAYMENT_NOTIFY_BASE_URL else "",
        )

    @classmethod
    def from_merchant(
        cls, *, integration_bid: str, public: Mapping[str, str], secret: Mapping[str, str]
    ) -> AlipayConfig:
        return cls(
            app_id=str(public.get("app_id") or "").strip(),
            app_private_key=str(secret.get("app_private_key") or ""),
            alipay_public_key=str(secret.get("alipay_public_key") or ""),
            gateway_url=str(public.get("gateway_url") or "").strip()
            or settings.ALIPAY_GATEWAY_URL
            or DEFAULT_GATEWAY,
            notify_url=notify_url(CHANNEL, integration_bid),
            integration_bid=integration_bid,
        )

    @property
    def configured(self) -> bool:
        return bool(self.app_id and self.app_private_key and self.alipay_public_key)

    def problems(self) -> list[str]:
        """What keeps this configuration from working, in words for staff."""
        found = []
        if not self.app_id:
            found.append("the app id is missing")
        for name, text, read in (
            ("application private key", self.app_private_key, sign.private_key),
            ("Alipay public key", self.alipay_public_key, sign.public_key),
        ):
            if not text:
                found.append(f"the {name} is missing")
                continue
            try:
                read(text)
            except sign.KeyInvalid as exc:
                found.append(f"the {name} cannot be read: {exc}")
        if self.integration_bid:
            problem = merchant_url_problem(
                self.gateway_url,
                known_hosts=GATEWAY_HOSTS,
                configured=settings.ALIPAY_GATEWAY_URL or DEFAULT_GATEWAY,
            )
            if problem:
                found.append(problem)
        return found

    @functools.cached_property
    def signing_key(self):
        return sign.private_key(self.app_private_key)

    @functools.cached_property
    def verifying_key(self):
        return sign.public_key(self.alipay_public_key)
