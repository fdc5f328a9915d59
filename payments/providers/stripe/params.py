"""What this service sends Stripe: checked amounts and return URLs, and the parameters
of the PaymentIntent and the Checkout Session made for a PaymentRequest."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from payments.providers.base import (
    CurrencyNotSupported,
    PaymentMethodInvalid,
    PaymentRequest,
    ProviderRequestRefused,
)
from payments_project.money import CURRENCY_EXPONENTS

CHANNEL = "stripe"

# Currencies whose minor unit at Stripe is not the ISO 4217 one that payments_project.money
# converts with: MGA is zero-decimal at Stripe (ISO: 2); ISK is two-decimal at Stripe
# (ISO: 0, amounts in multiples of 100); UGX is zero-decimal at Stripe but has had
# two-decimal rules of its own. Refused rather than sent with a guessed exponent.
STRIPE_MINOR_UNIT_DIFFERS = frozenset({"isk", "mga", "ugx"})
# Stripe takes three-decimal currencies only with a last digit of 0 (5.120 KWD).
THREE_DECIMAL = frozenset(code for code, places in CURRENCY_EXPONENTS.items() if places == 3)
# What the stripe channel takes.
CURRENCIES = frozenset(CURRENCY_EXPONENTS) - STRIPE_MINOR_UNIT_DIFFERS

# Stripe's limits, in characters.
PRODUCT_NAME_MAX = 250

# A Checkout Session expires 30 minutes to 24 hours after it is created; the margin
# covers the time between our clock reading and Stripe's.
CHECKOUT_MIN_LIFETIME = timedelta(minutes=30)
CHECKOUT_MAX_LIFETIME = timedelta(hours=24)
CHECKOUT_EXPIRY_MARGIN = timedelta(minutes=2)


def request_metadata(request: PaymentRequest) -> dict[str, str]:
    """The metadata of a request's payment (and attempt row): ours, then our ids."""
    return {
        **{str(key): str(value) for key, value in request.metadata.items()},
        "order_bid": request.order_bid,
        "attempt_bid": request.attempt_bid,
        "product_bid": request.product_bid,
    }


def check_amount(amount: int, currency: str, currencies: Collection[str] | None) -> str:
    """The lower-case currency, when Stripe takes it and the amount fits it."""
    code = (currency or "").strip().lower()
    if code not in (currencies or ()):
        raise CurrencyNotSupported(
            f"The stripe channel does not take {currency!r}"
            + (
                ": Stripe's minor unit for it is not the ISO 4217 one."
                if code in STRIPE_MINOR_UNIT_DIFFERS
                else "."
            ),
            channel=CHANNEL,
            currency=currency,
        )
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ProviderRequestRefused(
            f"Stripe takes a positive integer amount, not {amount!r}.",
            channel=CHANNEL,
            provider_code="amount_invalid",
        )
    if code in THREE_DECIMAL and amount % 10:
        raise ProviderRequestRefused(
            f"Stripe takes {code.upper()} amounts only in multiples of 10 minor units, "
            f"not {amount}.",
            channel=CHANNEL,
            provider_code="amount_not_multiple_of_ten",
            currency=code,
        )
    return code


def return_url(given: str, which: str) -> str:
    """A return URL for Checkout: the request's, checked against ALLOWED_HOSTS, or
    the configured default."""
    default = {
        "success_url": settings.STRIPE_CHECKOUT_SUCCESS_URL,
        "cancel_url": settings.STRIPE_CHECKOUT_CANCEL_URL,
    }[which]
    url = (given or "").strip()
    if not url:
        return default
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    # Hosts as ALLOWED_HOSTS names them ("example.com", ".example.com"), never "*":
    # a return URL anywhere would make Checkout an open redirect.
    patterns = [pattern for pattern in settings.ALLOWED_HOSTS if pattern != "*"]
    allowed = bool(host) and validate_host(host, patterns)
    if not (
        allowed
        and parts.scheme in ("http", "https")
        and url_has_allowed_host_and_scheme(
            url, allowed_hosts={parts.netloc}, require_https=not settings.DEBUG
        )
    ):
        schemes = "http(s)" if settings.DEBUG else "https"
        raise PaymentMethodInvalid(
            f"The {which.replace('_', ' ')} must be an {schemes} URL on one of this "
            "service's ALLOWED_HOSTS.",
            channel=CHANNEL,
            method="checkout_session",
            invalid=which,
        )
    return url


def checkout_expiry(expires_at: datetime | None) -> int | None:
    """``expires_at`` as a timestamp when Stripe accepts it for a session, else None
    (the session then lives Stripe's default 24 hours)."""
    if expires_at is None:
        return None
    now = timezone.now()
    earliest = now + CHECKOUT_MIN_LIFETIME + CHECKOUT_EXPIRY_MARGIN
    latest = now + CHECKOUT_MAX_LIFETIME - CHECKOUT_EXPIRY_MARGIN
    if not earliest <= expires_at <= latest:
        return None
    return int(expires_at.timestamp())


def payment_intent_params(request: PaymentRequest, currency: str) -> dict[str, Any]:
    # No description: the metadata says what was bought, and Stripe-compatible
    # servers used for local runs (localstripe) refuse the field.
    return {
        "amount": request.amount,
        "currency": currency,
        "payment_method_types": ["card"],
        "metadata": request_metadata(request),
    }


def checkout_session_params(
    request: PaymentRequest, currency: str, *, success_url: str, cancel_url: str
) -> dict[str, Any]:
    metadata = request_metadata(request)
    name = request.subject.strip()[:PRODUCT_NAME_MAX] or f"Order {request.order_bid}"
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": currency,
                    "unit_amount": request.amount,
                    "product_data": {"name": name},
                },
                "quantity": 1,
            }
        ],
        "success_url": success_url,
        "client_reference_id": request.order_bid,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }
    if cancel_url:
        params["cancel_url"] = cancel_url
    expires_at = checkout_expiry(request.expires_at)
    if expires_at is not None:
        params["expires_at"] = expires_at
    return params
