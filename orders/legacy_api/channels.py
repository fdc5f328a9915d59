"""The old frontend's payment channel names, as this service's channel and method.

The old request names a provider (``payment_channel``: ``pingxx``, ``stripe``, ``alipay``
or ``wechatpay``) and a ``channel``: a Ping++ method (``wx_pub_qr``, ``alipay_qr``,
``wx_pub``, ``wx_wap``), ``stripe`` or ``stripe:<mode>``, or ``<provider>:<method>``.
This service calls the same things channel (``pingxx``, ``stripe``, ``alipay``,
``wechatpay``, ``sandbox``) and method; ``payments.registry.resolve`` then checks them as
it does for the REST API.
"""

from __future__ import annotations

from payments import registry

# The providers the old system knew; the two native ones are Alipay and WeChat Pay
# direct (this service's alipay and wechatpay channels).
OLD_PROVIDERS = frozenset({"pingxx", "stripe", "alipay", "wechatpay"})
NATIVE_PROVIDERS = frozenset({"alipay", "wechatpay"})
# A bare method goes to the native channel that has it when that channel is enabled,
# else to Ping++, as the platform resolves it (payment_channel_resolution.py).
NATIVE_FOR_METHOD = {"alipay_qr": "alipay", "wx_pub_qr": "wechatpay", "wx_pub": "wechatpay"}

# Stripe modes as the old system read them; anything else was Checkout, its default.
STRIPE_MODES = {
    "checkout": "checkout_session",
    "checkout_session": "checkout_session",
    "intent": "payment_intent",
    "payment_intent": "payment_intent",
}
STRIPE_DEFAULT_MODE = "checkout_session"


def service_channel(channel: str, payment_channel: str) -> tuple[str | None, str | None]:
    """(channel, method) for ``payment_start``; None leaves the choice to the service
    (the order's channel, else the default one, and the channel's default method).

    ``alipay`` and ``wechatpay`` are the native channels; a bare ``alipay_qr``,
    ``wx_pub_qr`` or ``wx_pub`` goes to its native channel when that is enabled.
    """
    provider = (payment_channel or "").strip().lower()
    hint = (channel or "").strip().lower()
    hinted, colon, method = hint.partition(":")
    if not colon:
        hinted, method = (hint, "") if hint in OLD_PROVIDERS else ("", hint)
    provider = provider or hinted
    if not provider and NATIVE_FOR_METHOD.get(method) in registry.enabled_channels():
        provider = NATIVE_FOR_METHOD[method]
    if provider == "stripe":
        return "stripe", STRIPE_MODES.get(method, STRIPE_DEFAULT_MODE)
    if method and not provider:
        provider = "pingxx"  # a bare method is a Ping++ one, as in the old system
    return provider or None, method or None


def old_channel(channel: str, method: str) -> str:
    """The ``channel`` the old answer carried: the Ping++ method, ``stripe`` (a
    PaymentIntent) or ``stripe:checkout_session``; ``<channel>:<method>`` for the others."""
    if channel == "pingxx":
        return method
    if channel == "stripe":
        return "stripe" if method == "payment_intent" else f"stripe:{method}"
    return f"{channel}:{method}"
