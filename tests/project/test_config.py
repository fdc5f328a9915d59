"""The environment declaration, settings read from it, and .env.example."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from payments_project import config


def test_every_variable_is_declared_once_with_help_and_a_known_group():
    names = [variable.name for variable in config.VARIABLES]
    assert len(names) == len(set(names))
    for variable in config.VARIABLES:
        assert variable.group in config.GROUPS, variable.name
        assert len(variable.help) > 20, variable.name


def test_the_issue_names_are_declared_exactly():
    required = {
        "DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "PAYMENT_CHANNELS_ENABLED",
        "DEFAULT_PAYMENT_CHANNEL", "PAY_ORDER_EXPIRE_SECONDS", "PINGXX_API_BASE",
        "PINGXX_SECRET_KEY", "PINGXX_APP_ID", "PINGXX_PRIVATE_KEY", "PINGXX_PRIVATE_KEY_PATH",
        "PINGXX_WEBHOOK_PUBLIC_KEY", "PINGXX_WEBHOOK_PUBLIC_KEY_PATH", "STRIPE_API_BASE",
        "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET",
        "STRIPE_DEFAULT_CURRENCY",
    }  # fmt: skip
    assert required <= set(config.BY_NAME)
    secrets = {v.name for v in config.VARIABLES if v.secret}
    assert {"SECRET_KEY", "PINGXX_SECRET_KEY", "STRIPE_SECRET_KEY"} <= secrets
    assert "STRIPE_PUBLISHABLE_KEY" not in secrets


def test_defaults_when_nothing_is_set():
    values = config.load({})
    assert values["DEBUG"] is False
    assert values["DEFAULT_PAYMENT_CHANNEL"] == "pingxx"
    assert values["PAY_ORDER_EXPIRE_SECONDS"] == 600
    assert values["PAYMENT_CHANNELS_ENABLED"] == []
    database = values["DATABASE_URL"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(config.BASE_DIR / "db.sqlite3")


def test_values_are_parsed_by_type_and_empty_means_default():
    values = config.load(
        {
            "DEBUG": "true",
            "ALLOWED_HOSTS": "pay.example.com, admin.example.com",
            "PAYMENT_CHANNELS_ENABLED": "pingxx,stripe",
            "PAY_ORDER_EXPIRE_SECONDS": "900",
            "DATABASE_URL": "mysql://app:pw@db.internal:3306/orders",
            "STRIPE_DEFAULT_CURRENCY": "",
        }
    )
    assert values["DEBUG"] is True
    assert values["ALLOWED_HOSTS"] == ["pay.example.com", "admin.example.com"]
    assert values["PAYMENT_CHANNELS_ENABLED"] == ["pingxx", "stripe"]
    assert values["PAY_ORDER_EXPIRE_SECONDS"] == 900
    assert values["DATABASE_URL"]["ENGINE"] == "django.db.backends.mysql"
    assert values["DATABASE_URL"]["NAME"] == "orders"
    assert values["STRIPE_DEFAULT_CURRENCY"] == "usd"


def test_a_value_that_does_not_parse_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="PAY_ORDER_EXPIRE_SECONDS"):
        config.load({"PAY_ORDER_EXPIRE_SECONDS": "ten minutes"})


def test_env_file_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    env_file = tmp_path / "service.env"
    env_file.write_text("PAY_ORDER_EXPIRE_SECONDS=120\nPINGXX_APP_ID=app_from_file\n")
    monkeypatch.setenv("DJANGO_ENV_FILE", str(env_file))
    monkeypatch.setenv("PINGXX_APP_ID", "app_from_environment")
    # set, then removed: monkeypatch then also removes what read_env_file adds
    monkeypatch.setenv("PAY_ORDER_EXPIRE_SECONDS", "")
    monkeypatch.delenv("PAY_ORDER_EXPIRE_SECONDS")
    config.read_env_file()
    values = config.load()
    assert values["PAY_ORDER_EXPIRE_SECONDS"] == 120
    assert values["PINGXX_APP_ID"] == "app_from_environment"


def test_env_example_is_up_to_date():
    committed = (config.BASE_DIR / ".env.example").read_text(encoding="utf-8")
    assert committed == config.render_env_example(), (
        ".env.example is stale: run `python manage.py generate_env_example`"
    )


def test_env_example_lists_every_variable_and_no_secret_value():
    text = config.render_env_example()
    for variable in config.VARIABLES:
        assert f"{variable.name}=" in text
        if variable.secret and variable.type != config.DB_URL:
            assert f"\n{variable.name}=\n" in text
    assert config.DEVELOPMENT_SECRET_KEY not in text
    for group in config.GROUPS:
        assert config.GROUP_TITLES[group] in text


def test_generate_env_example_command(tmp_path):
    from django.core.management import CommandError, call_command

    target = tmp_path / "env.example"
    call_command("generate_env_example", output=str(target))
    assert target.read_text() == config.render_env_example()
    call_command("generate_env_example", output=str(target), check=True)
    target.write_text("STALE=1\n")
    with pytest.raises(CommandError, match="stale"):
        call_command("generate_env_example", output=str(target), check=True)
