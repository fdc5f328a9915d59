"""manage.py payment_credentials_rotate: a new key, re-sealing under the first key, and
--check before the old key is removed."""

import re
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from payments import credentials
from payments.merchants import PaymentIntegration

SECRET = {"api_v3_key": "c" * 32, "private_key": "-----BEGIN PRIVATE KEY-----\nabc\n"}


def run(*args):
    out = StringIO()
    call_command("payment_credentials_rotate", *args, stdout=out)
    return out.getvalue()


def accounts(count=3):
    """Accounts sealed under the current keys, the last one inactive."""
    return [
        PaymentIntegration.objects.create(
            channel="wechatpay",
            creator_bid=f"creator-{n}",
            secret_sealed=credentials.seal({**SECRET, "n": str(n)}),
            active=n < count - 1,
        )
        for n in range(count)
    ]


def test_new_key_prints_a_fernet_key_and_reads_nothing():
    key = run("--new-key").strip()
    Fernet(key)  # raises when it is not one
    assert run("--new-key").strip() != key


@pytest.mark.django_db
def test_rotation_moves_every_account_to_the_new_key(settings):
    old, new = credentials.new_key(), credentials.new_key()
    settings.PAYMENT_CREDENTIALS_KEYS = [old]
    rows = accounts()
    PaymentIntegration.objects.create(channel="alipay", creator_bid="creator-x")  # no secret

    settings.PAYMENT_CREDENTIALS_KEYS = [new, old]
    with pytest.raises(
        CommandError, match=re.escape("3 payment integration(s) are sealed under an older")
    ):
        run("--check")

    assert "Re-sealed 3 payment integration(s)" in run()
    assert "3 of 3 payment integration(s) open with PAYMENT_CREDENTIALS_KEYS; 3 under" in run(
        "--check"
    )

    settings.PAYMENT_CREDENTIALS_KEYS = [new]
    for n, row in enumerate(rows):
        row.refresh_from_db()
        assert credentials.unseal(row.secret_sealed) == {**SECRET, "n": str(n)}
    assert "3 of 3" in run("--check")


@pytest.mark.django_db
def test_check_names_the_accounts_the_keys_cannot_open(settings):
    settings.PAYMENT_CREDENTIALS_KEYS = [credentials.new_key()]
    lost = accounts(2)
    settings.PAYMENT_CREDENTIALS_KEYS = [credentials.new_key()]
    kept = accounts(1)

    out = StringIO()
    with pytest.raises(
        CommandError, match=re.escape("2 payment integration(s) cannot be opened")
    ) as exc:
        call_command("payment_credentials_rotate", "--check", stdout=out)
    assert exc.value.returncode == 1
    text = out.getvalue()
    for row in lost:
        assert f"cannot be opened: {row.integration_bid} (wechatpay, creator" in text
    assert kept[0].integration_bid not in text
    assert "1 of 3 payment integration(s) open" in text

    with pytest.raises(CommandError, match="cannot be opened"):
        run()


@pytest.mark.django_db
def test_without_a_usable_key_nothing_is_done(settings):
    settings.PAYMENT_CREDENTIALS_KEYS = []
    with pytest.raises(CommandError, match="PAYMENT_CREDENTIALS_KEYS is not set"):
        run()
    settings.PAYMENT_CREDENTIALS_KEYS = ["not-a-key"]
    with pytest.raises(CommandError, match="key 1 of 1 is not a Fernet key"):
        run("--check")
