"""Each configuration check: a bad value is an error that names its variable."""

import os
import subprocess
import sys
from unittest import mock

import pytest
from Crypto.PublicKey import RSA
from django.core import checks
from django.test import override_settings

from payments import credentials, integrations
from payments.merchants import PaymentIntegration
from payments_project import config
from tests import alipay

STRIPE_SECRET = "sk_test_" + "a" * 24
STRIPE_LIVE_SECRET = "sk_live_" + "b" * 24


@pytest.fixture(scope="session")
def rsa_key():
    return RSA.generate(1024)


@pytest.fixture(scope="session")
def private_pem(rsa_key):
    return rsa_key.export_key().decode()


@pytest.fixture(scope="session")
def public_pem(rsa_key):
    return rsa_key.publickey().export_key().decode()


@pytest.fixture
def pingxx_settings(private_pem, public_pem):
    return {
        "PINGXX_SECRET_KEY": "sk_test_pingxx",
        "PINGXX_APP_ID": "app_Test",
        "PINGXX_PRIVATE_KEY": private_pem,
        "PINGXX_WEBHOOK_PUBLIC_KEY": public_pem,
    }


class StripeShapedProvider:
    """Stands in for a provider module so the Stripe key checks run on their own."""

    channel = "stripe"


STRIPE_PROVIDERS = {
    "pingxx": "payments.providers.pingxx.PingxxProvider",
    "sandbox": "payments.providers.sandbox.SandboxProvider",
    "stripe": "tests.project.test_checks.StripeShapedProvider",
}


def errors(**overrides):
    with override_settings(**overrides):
        found = checks.run_checks(tags=["payments"])
    return [(message.id, message.msg) for message in found if message.is_serious()]


def ids(**overrides):
    return {check_id for check_id, _ in errors(**overrides)}


def test_the_test_configuration_is_clean():
    assert errors() == []


def test_unknown_channel_names_the_variable():
    found = errors(PAYMENT_CHANNELS_ENABLED=["pingxx", "paypal"], DEBUG=True)
    assert ("config.E001", "PAYMENT_CHANNELS_ENABLED names an unknown channel 'paypal'.") in found
    found = errors(DEFAULT_PAYMENT_CHANNEL="paypal")
    assert any(i == "config.E001" and "DEFAULT_PAYMENT_CHANNEL" in m for i, m in found)


def test_default_channel_must_be_enabled():
    found = errors(PAYMENT_CHANNELS_ENABLED=["stripe"], DEFAULT_PAYMENT_CHANNEL="pingxx")
    assert any(i == "config.E002" and "DEFAULT_PAYMENT_CHANNEL" in m for i, m in found)


@pytest.mark.parametrize(
    "missing",
    ["PINGXX_SECRET_KEY", "PINGXX_APP_ID", "PINGXX_PRIVATE_KEY", "PINGXX_WEBHOOK_PUBLIC_KEY"],
)
def test_pingxx_enabled_without_a_key(pingxx_settings, missing):
    settings_ = {**pingxx_settings, missing: ""}
    found = errors(PAYMENT_CHANNELS_ENABLED=["pingxx"], **settings_)
    assert [i for i, _ in found] == ["config.E003"]
    assert missing in dict(found)["config.E003"]


def test_pingxx_fully_configured_is_clean(pingxx_settings):
    assert errors(PAYMENT_CHANNELS_ENABLED=["pingxx"], **pingxx_settings) == []


def test_pingxx_keys_from_files(pingxx_settings, tmp_path, private_pem, public_pem):
    (tmp_path / "private.pem").write_text(private_pem)
    (tmp_path / "public.pem").write_text(public_pem)
    settings_ = {
        **pingxx_settings,
        "PINGXX_PRIVATE_KEY": "",
        "PINGXX_WEBHOOK_PUBLIC_KEY": "",
        "PINGXX_PRIVATE_KEY_PATH": str(tmp_path / "private.pem"),
        "PINGXX_WEBHOOK_PUBLIC_KEY_PATH": str(tmp_path / "public.pem"),
    }
    assert errors(PAYMENT_CHANNELS_ENABLED=["pingxx"], **settings_) == []
    found = errors(PINGXX_PRIVATE_KEY_PATH=str(tmp_path / "missing.pem"))
    assert [i for i, _ in found] == ["config.E006"]
    assert "PINGXX_PRIVATE_KEY_PATH" in found[0][1]


@pytest.mark.parametrize("variable", ["PINGXX_PRIVATE_KEY", "PINGXX_WEBHOOK_PUBLIC_KEY"])
def test_a_pem_that_does_not_parse_names_the_variable(variable):
    garbage = "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n"
    found = errors(**{variable: garbage})
    assert [i for i, _ in found] == ["config.E004"]
    assert found[0][1].startswith(variable + " ")


def test_keys_swapped_are_refused(private_pem, public_pem):
    found = errors(PINGXX_PRIVATE_KEY=public_pem, PINGXX_WEBHOOK_PUBLIC_KEY=private_pem)
    assert sorted(i for i, _ in found) == ["config.E004", "config.E004"]


def test_one_line_pem_with_escaped_newlines_parses(private_pem):
    assert errors(PINGXX_PRIVATE_KEY=private_pem.replace("\n", "\\n")) == []


def test_key_given_twice(private_pem, tmp_path):
    found = errors(PINGXX_PRIVATE_KEY=private_pem, PINGXX_PRIVATE_KEY_PATH=str(tmp_path))
    assert [i for i, _ in found] == ["config.E005"]


@pytest.mark.parametrize(
    "missing", ["STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"]
)
def test_stripe_enabled_without_a_key(missing):
    settings_ = {
        "STRIPE_SECRET_KEY": STRIPE_SECRET,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
        missing: "",
    }
    found = errors(
        PAYMENT_CHANNELS_ENABLED=["stripe"],
        DEFAULT_PAYMENT_CHANNEL="stripe",
        PAYMENT_PROVIDERS=STRIPE_PROVIDERS,
        **settings_,
    )
    assert [i for i, _ in found if i != "config.E013"] == ["config.E003"]
    assert missing in dict(found)["config.E003"]


@pytest.mark.parametrize(
    "variable,value",
    [
        ("STRIPE_SECRET_KEY", "sk_test_short"),
        ("STRIPE_SECRET_KEY", "pk_test_" + "a" * 24),
        ("STRIPE_PUBLISHABLE_KEY", "sk_test_x"),
        ("STRIPE_WEBHOOK_SECRET", "secret"),
        ("STRIPE_DEFAULT_CURRENCY", "dollars"),
        ("STRIPE_API_BASE", "api.stripe.com"),
        ("PINGXX_API_BASE", "ftp://api.pingxx.com"),
        ("PINGXX_API_BASE", "http://api.pingxx.com"),
    ],
)
def test_malformed_values_name_the_variable(variable, value):
    found = errors(**{variable: value})
    assert len(found) == 1
    assert variable in found[0][1]


def test_plain_http_to_loopback_is_fine():
    assert errors(STRIPE_API_BASE="http://127.0.0.1:8420") == []


def test_stripe_modes_must_match():
    found = errors(STRIPE_SECRET_KEY=STRIPE_LIVE_SECRET, STRIPE_PUBLISHABLE_KEY="pk_test_x")
    assert [i for i, _ in found] == ["config.E007"]


def test_sandbox_with_debug_off():
    found = errors(PAYMENT_CHANNELS_ENABLED=["sandbox"], DEFAULT_PAYMENT_CHANNEL="sandbox")
    assert [i for i, _ in found] == ["config.E010"]
    assert (
        errors(PAYMENT_CHANNELS_ENABLED=["sandbox"], DEFAULT_PAYMENT_CHANNEL="sandbox", DEBUG=True)
        == []
    )


def test_development_secret_key_with_debug_off():
    found = errors(SECRET_KEY=config.DEVELOPMENT_SECRET_KEY, DEBUG=False)
    assert [i for i, _ in found] == ["config.E012"]
    assert "SECRET_KEY" in found[0][1]
    assert ids(SECRET_KEY="short", DEBUG=False) == {"config.E012"}
    assert errors(SECRET_KEY=config.DEVELOPMENT_SECRET_KEY, DEBUG=True) == []


def test_expire_seconds_must_be_positive():
    assert ids(PAY_ORDER_EXPIRE_SECONDS=0) == {"config.E011"}


def run_manage(args, env, tmp_path):
    # The service's own settings module, and none of the variables of this process.
    hidden = (*config.BY_NAME, "DJANGO_SETTINGS_MODULE")
    base = {k: v for k, v in os.environ.items() if k not in hidden}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=config.BASE_DIR,
        env={**base, "DJANGO_ENV_FILE": "", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_with_a_production_environment_reports_nothing(
    tmp_path, private_pem, public_pem
):
    (tmp_path / "pingxx_private.pem").write_text(private_pem)
    env = {
        "SECRET_KEY": "p" * 20 + "-Zk3vQ9rT1yW8nB5xL2mC7hJ4dF6gS0aE",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "pay.example.com",
        "SECURE_HSTS_PRELOAD": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "PAYMENT_CHANNELS_ENABLED": "pingxx",
        "DEFAULT_PAYMENT_CHANNEL": "pingxx",
        "PINGXX_SECRET_KEY": "sk_live_pingxxsecret",
        "PINGXX_APP_ID": "app_Live",
        "PINGXX_PRIVATE_KEY_PATH": str(tmp_path / "pingxx_private.pem"),
        "PINGXX_WEBHOOK_PUBLIC_KEY": public_pem,
        "STRIPE_SECRET_KEY": STRIPE_LIVE_SECRET,
        "STRIPE_PUBLISHABLE_KEY": "pk_live_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
    }
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_refuses_to_start_with_a_development_key(tmp_path):
    env = {"DEBUG": "false", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    result = run_manage(["check"], env, tmp_path)
    assert result.returncode != 0
    assert "config.E012" in result.stderr and "SECRET_KEY" in result.stderr


def test_provider_that_does_not_import_or_is_not_a_provider():
    providers = {
        **STRIPE_PROVIDERS,
        "stripe": "payments.providers.nowhere.Provider",
        "sandbox": "tests.project.test_checks.StripeShapedProvider",
    }
    found = errors(
        DEBUG=True,
        PAYMENT_CHANNELS_ENABLED=["stripe", "sandbox"],
        DEFAULT_PAYMENT_CHANNEL="sandbox",
        PAYMENT_PROVIDERS=providers,
        STRIPE_SECRET_KEY=STRIPE_SECRET,
        STRIPE_PUBLISHABLE_KEY="pk_test_x",
        STRIPE_WEBHOOK_SECRET="whsec_x",
    )
    messages = [m for i, m in found if i == "config.E013"]
    assert len(messages) == 2, found
    assert "cannot import" in messages[0] and "PAYMENT_PROVIDERS['stripe']" in messages[0]
    assert "not a payment provider for 'sandbox'" in messages[1]


# ---- creators' merchant accounts: the credentials keys and the accounts themselves ----

ACCOUNT_IDS = {"config.E023", "config.E024", "config.E025", "config.W003"}


def account_messages(**overrides):
    """What the account checks say, the database ones included (as with --database)."""
    with override_settings(**overrides):
        found = checks.run_checks(tags=["payments"], databases=["default"])
    return [(message.id, message.msg) for message in found if message.id in ACCOUNT_IDS]


@pytest.fixture
def sealing_key(settings):
    settings.PAYMENT_CREDENTIALS_KEYS = [credentials.new_key()]
    return settings.PAYMENT_CREDENTIALS_KEYS[0]


@pytest.fixture
def alipay_account(sealing_key, alipay_keys):
    return integrations.integration_save(
        channel="alipay",
        creator_bid="creator-a",
        public={"app_id": "2021000000000777", "gateway_url": "https://openapi.alipay.com/x"},
        secret={
            "app_private_key": alipay.private_pem(alipay_keys.stranger),
            "alipay_public_key": alipay.public_pem(alipay_keys.alipay),
        },
    )


def test_a_credentials_key_that_is_not_a_fernet_key_is_named_by_position():
    found = errors(PAYMENT_CREDENTIALS_KEYS=[credentials.new_key(), "not-a-key"])
    assert [i for i, _ in found] == ["config.E023"]
    assert "PAYMENT_CREDENTIALS_KEYS: key 2 of 2" in found[0][1]
    assert "not-a-key" not in found[0][1]
    assert errors(PAYMENT_CREDENTIALS_KEYS=[credentials.new_key(), credentials.new_key()]) == []


@pytest.mark.django_db
def test_usable_accounts_on_enabled_channels_are_clean(alipay_account):
    assert account_messages(PAYMENT_CHANNELS_ENABLED=["pingxx", "alipay"]) == []
    # without --database, the accounts are not looked at
    assert errors(PAYMENT_CREDENTIALS_KEYS=[]) == []


@pytest.mark.django_db
def test_active_accounts_without_a_key(alipay_account):
    found = account_messages(PAYMENT_CHANNELS_ENABLED=["alipay"], PAYMENT_CREDENTIALS_KEYS=[])
    assert [i for i, _ in found] == ["config.E024"]
    assert "PAYMENT_CREDENTIALS_KEYS is not set" in found[0][1]


@pytest.mark.django_db
def test_an_account_the_keys_no_longer_open(alipay_account):
    keys = [credentials.new_key()]
    found = account_messages(PAYMENT_CHANNELS_ENABLED=["alipay"], PAYMENT_CREDENTIALS_KEYS=keys)
    assert [i for i, _ in found] == ["config.E025"]
    message = found[0][1]
    assert alipay_account.integration_bid in message and "alipay" in message
    assert "creator-a" in message and "cannot be opened" in message

    alipay_account.active = False
    alipay_account.save()
    assert account_messages(PAYMENT_CREDENTIALS_KEYS=keys) == []


@pytest.mark.django_db
def test_an_account_the_provider_refuses(alipay_account, sealing_key):
    alipay_account.public_config = {"app_id": ""}
    alipay_account.save()
    found = account_messages(PAYMENT_CHANNELS_ENABLED=["alipay"])
    assert [i for i, _ in found] == ["config.E025"]
    assert "app_id is missing" in found[0][1]


@pytest.mark.django_db
def test_active_accounts_on_a_channel_not_enabled(alipay_account):
    found = account_messages(PAYMENT_CHANNELS_ENABLED=["pingxx"])
    assert found == [
        (
            "config.W003",
            "1 active payment integration(s) on alipay, which PAYMENT_CHANNELS_ENABLED does "
            "not enable: their creators' orders cannot be paid on it.",
        )
    ]


@pytest.mark.django_db
def test_no_accounts_table_yet_is_nothing_to_say(alipay_account):
    with mock.patch.object(PaymentIntegration._meta, "db_table", "no_such_table"):
        assert account_messages(PAYMENT_CREDENTIALS_KEYS=[]) == []


def test_check_database_on_a_database_not_migrated_yet(tmp_path):
    env = {"DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    result = run_manage(["check", "--database", "default"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_every_provider_of_the_service_is_a_payment_provider():
    """config.E013 passes for each channel the service ships, enabled or not (the
    Alipay and WeChat Pay classes included: an attribute set only when built fails)."""
    from django.conf import settings

    from payments.checks import provider_errors

    assert provider_errors(list(settings.PAYMENT_PROVIDERS)) == []
