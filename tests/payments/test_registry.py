import pytest
from django.test import override_settings

from payments import registry
from payments.providers.base import PaymentMethodInvalid
from payments.providers.sandbox import SandboxProvider


@pytest.fixture(autouse=True)
def _fresh_registry():
    registry._provider.cache_clear()
    yield
    registry._provider.cache_clear()


@override_settings(DEBUG=True, PAYMENT_CHANNELS_ENABLED=[])
def test_with_debug_and_nothing_configured_the_sandbox_takes_payments():
    assert registry.enabled_channels() == ("sandbox",)
    assert registry.default_channel() == "sandbox"
    assert isinstance(registry.get_provider("sandbox"), SandboxProvider)


@override_settings(DEBUG=False, PAYMENT_CHANNELS_ENABLED=[])
def test_without_debug_nothing_is_enabled_by_default():
    assert registry.enabled_channels() == ()
    with pytest.raises(registry.ChannelNotEnabled) as refused:
        registry.get_provider("sandbox")
    assert refused.value.code == "payment_channel_not_enabled"
    assert refused.value.channel == "sandbox"


@override_settings(
    DEBUG=True, PAYMENT_CHANNELS_ENABLED=["sandbox"], DEFAULT_PAYMENT_CHANNEL="pingxx"
)
def test_channels_outside_the_enabled_list_are_refused():
    with pytest.raises(registry.ChannelNotEnabled):
        registry.get_provider("pingxx")
    assert registry.default_channel() == "sandbox"  # the default is not enabled here
    assert registry.get_provider_any("pingxx").channel == "pingxx"  # settling is allowed


@override_settings(DEBUG=True, PAYMENT_CHANNELS_ENABLED=["sandbox", "pingxx"])
@pytest.mark.parametrize(
    ("channel", "method", "fallback", "expected"),
    [
        (None, None, "sandbox", ("sandbox", "confirm_page")),
        ("pingxx", None, "sandbox", ("pingxx", "alipay_qr")),
        (None, "pingxx:wx_pub_qr", "sandbox", ("pingxx", "wx_pub_qr")),
        ("pingxx:alipay_pc_direct", None, "sandbox", ("pingxx", "alipay_pc_direct")),
        ("pingxx", "pingxx:wx_wap", "sandbox", ("pingxx", "wx_wap")),
        (None, None, "stripe", ("pingxx", "alipay_qr")),  # fallback not enabled: default
        (None, "wx_pub", "pingxx", ("pingxx", "wx_pub")),
    ],
)
def test_resolve_understands_channels_methods_and_hints(channel, method, fallback, expected):
    assert registry.resolve(channel, method, fallback=fallback) == expected


@override_settings(DEBUG=True, PAYMENT_CHANNELS_ENABLED=["sandbox", "pingxx"])
@pytest.mark.parametrize(
    ("channel", "method", "error"),
    [
        ("sandbox", "alipay_qr", PaymentMethodInvalid),
        ("sandbox", "pingxx:alipay_qr", PaymentMethodInvalid),
        (None, "stripe:checkout_session", registry.ChannelNotEnabled),
        ("paypal", None, registry.ChannelNotEnabled),
    ],
)
def test_resolve_refuses(channel, method, error):
    with pytest.raises(error):
        registry.resolve(channel, method, fallback="sandbox")
