"""The admin of creators' merchant accounts: secrets are write-only, what the provider
refuses is a form error, accounts are deactivated and never deleted, and staff limited
to some creators never reach another creator's account."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from orders.models import StaffCreator
from payments import credentials
from payments.integrations import integration_save
from payments.merchants import PaymentIntegration
from tests.alipay import private_pem, public_pem
from tests.factories import UserFactory
from tests.wechatpay import wechatpay_cert_pem, wechatpay_private_pem

pytestmark = pytest.mark.django_db

ADD = reverse("admin:payments_paymentintegration_add")
LIST = reverse("admin:payments_paymentintegration_changelist")
GATEWAY = "https://openapi.alipay.com/gateway.do"
API_V3_KEY = "c" * 32


def change_url(row):
    return reverse("admin:payments_paymentintegration_change", args=[row.pk])


@pytest.fixture
def key(settings):
    settings.PAYMENT_CREDENTIALS_KEYS = [credentials.new_key()]
    return settings.PAYMENT_CREDENTIALS_KEYS[0]


@pytest.fixture
def alipay_secret(alipay_keys):
    return {
        "app_private_key": private_pem(alipay_keys.stranger),
        "alipay_public_key": public_pem(alipay_keys.alipay),
    }


@pytest.fixture
def wechatpay_secret(wechatpay_keys):
    return {
        "api_v3_key": API_V3_KEY,
        "private_key": wechatpay_private_pem(wechatpay_keys.stranger),
        "platform_cert": wechatpay_cert_pem(wechatpay_keys.platform_cert),
    }


WECHATPAY_PUBLIC = {
    "app_id": "wx1111222233334444",
    "mch_id": "1900000001",
    "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    "base_url": "",
}


@pytest.fixture
def alipay_row(key, alipay_secret):
    return integration_save(
        channel="alipay",
        creator_bid="creator-a",
        name="A's Alipay",
        public={"app_id": "2021000000000777", "gateway_url": GATEWAY},
        secret=alipay_secret,
    )


@pytest.fixture
def wechatpay_row(key, wechatpay_secret):
    return integration_save(
        channel="wechatpay",
        creator_bid="creator-b",
        name="B's WeChat Pay",
        public=WECHATPAY_PUBLIC,
        secret=wechatpay_secret,
    )


def stored(secret):
    """A secret as stored: each value stripped."""
    return {name: value.strip() for name, value in secret.items()}


def alipay_post(secret, **overrides):
    data = {
        "creator_bid": "creator-a",
        "name": "A's Alipay",
        "active": "on",
        "alipay__app_id": "2021000000000777",
        "alipay__gateway_url": GATEWAY,
        "alipay__app_private_key": secret.get("app_private_key", ""),
        "alipay__alipay_public_key": secret.get("alipay_public_key", ""),
    }
    return {**data, **overrides}


def wechatpay_post(secret, **overrides):
    data = {
        "creator_bid": "creator-b",
        "name": "B's WeChat Pay",
        "active": "on",
        **{f"wechatpay__{name}": value for name, value in WECHATPAY_PUBLIC.items()},
        **{f"wechatpay__{name}": value for name, value in secret.items()},
    }
    return {**data, **overrides}


def secret_lines(secret):
    """Every line of every secret value that could betray it (PEM bodies, the key)."""
    return [
        line
        for value in secret.values()
        for line in value.splitlines()
        if line and not line.startswith("-----")
    ]


def assert_nothing_secret(html, row, secret):
    assert row.secret_sealed not in html
    for line in secret_lines(secret):
        assert line not in html


def page(client, url, params=None):
    response = client.get(url, params or {})
    assert response.status_code == 200
    return response.content.decode()


# ---- adding ----


def test_adding_starts_with_the_channels_that_take_accounts(admin_client, key):
    html = page(admin_client, ADD)
    assert "?channel=alipay" in html and "?channel=wechatpay" in html
    assert "channel=stripe" not in html and "channel=pingxx" not in html
    assert "?channel=alipay" in page(admin_client, ADD, {"channel": "stripe"})

    form = admin_client.get(ADD, {"channel": "alipay"}).context["adminform"].form
    assert [value for value, _ in form.fields["channel"].choices] == ["alipay", "wechatpay"]
    assert form.fields["channel"].disabled and form.initial["channel"] == "alipay"
    assert "alipay__app_id" in form.fields and "wechatpay__mch_id" not in form.fields


def test_an_account_added_is_stored_sealed_with_fingerprints(admin_client, key, alipay_secret):
    windows = {name: value.replace("\n", "\r\n") for name, value in alipay_secret.items()}
    response = admin_client.post(f"{ADD}?channel=alipay", alipay_post(windows))
    assert response.status_code == 302, response.content.decode()[:3000]

    row = PaymentIntegration.objects.get()
    assert (row.channel, row.creator_bid, row.active) == ("alipay", "creator-a", True)
    assert row.public_config == {"app_id": "2021000000000777", "gateway_url": GATEWAY}
    assert credentials.unseal(row.secret_sealed) == stored(alipay_secret)
    assert row.secret_hints["app_private_key"].startswith("set · ")
    assert alipay_secret["app_private_key"] not in row.secret_sealed


def test_the_channel_posted_is_ignored(admin_client, key, alipay_secret):
    data = alipay_post(alipay_secret, channel="wechatpay")
    assert admin_client.post(f"{ADD}?channel=alipay", data).status_code == 302
    assert PaymentIntegration.objects.get().channel == "alipay"


def test_what_the_provider_refuses_is_a_form_error_and_secrets_are_not_echoed(
    admin_client, key, alipay_secret
):
    data = alipay_post(alipay_secret, alipay__app_private_key="nonsense")
    response = admin_client.post(f"{ADD}?channel=alipay", data)

    assert response.status_code == 200
    html = response.content.decode()
    assert "The alipay account cannot be used" in html
    assert "application private key cannot be read" in html
    assert 'name="alipay__alipay_public_key"' in html  # the field is there, empty
    for line in secret_lines(alipay_secret):
        assert line not in html
    assert not PaymentIntegration.objects.exists()


def test_without_a_key_nothing_is_stored_and_the_page_says_why(admin_client, alipay_secret):
    html = page(admin_client, ADD, {"channel": "alipay"})
    assert "PAYMENT_CREDENTIALS_KEYS is not set" in html

    response = admin_client.post(f"{ADD}?channel=alipay", alipay_post(alipay_secret))
    assert response.status_code == 200
    assert "PAYMENT_CREDENTIALS_KEYS is not set" in response.content.decode()
    assert not PaymentIntegration.objects.exists()


def test_a_bad_key_is_a_form_error(admin_client, settings, alipay_secret):
    settings.PAYMENT_CREDENTIALS_KEYS = ["not-a-fernet-key"]
    response = admin_client.post(f"{ADD}?channel=alipay", alipay_post(alipay_secret))
    assert response.status_code == 200
    assert "not a Fernet key" in response.content.decode()
    assert "not-a-fernet-key" not in response.content.decode()


# ---- what is shown ----


def test_the_change_page_and_the_list_show_no_secret(
    admin_client, alipay_row, alipay_secret, wechatpay_row, wechatpay_secret
):
    for row, secret in ((alipay_row, alipay_secret), (wechatpay_row, wechatpay_secret)):
        html = page(admin_client, change_url(row))
        assert_nothing_secret(html, row, secret)
        assert all(f'name="{row.channel}__{name}"' in html for name in secret)
        for hint in row.secret_hints.values():
            assert hint in html
        assert f"/webhooks/{row.channel}/{row.integration_bid}/" in html

    listing = page(admin_client, LIST)
    assert "app_id 2021000000000777" in listing and "mch_id 1900000001" in listing
    assert_nothing_secret(listing, alipay_row, alipay_secret)
    assert_nothing_secret(listing, wechatpay_row, wechatpay_secret)


def test_the_list_filters_and_searches(admin_client, alipay_row, wechatpay_row):
    assert alipay_row.integration_bid not in page(admin_client, LIST, {"channel": "wechatpay"})
    found = page(admin_client, LIST, {"q": "creator-a"})
    assert alipay_row.integration_bid in found and wechatpay_row.integration_bid not in found
    assert wechatpay_row.integration_bid in page(admin_client, LIST, {"q": "WeChat"})


# ---- changing ----


def test_a_blank_secret_keeps_the_stored_value(admin_client, wechatpay_row, wechatpay_secret):
    data = wechatpay_post(
        {name: "" for name in wechatpay_secret}, name="renamed", wechatpay__mch_id="1900000002"
    )
    response = admin_client.post(change_url(wechatpay_row), data)
    assert response.status_code == 302, response.content.decode()[:3000]

    wechatpay_row.refresh_from_db()
    assert wechatpay_row.name == "renamed" and wechatpay_row.public_config["mch_id"] == "1900000002"
    assert credentials.unseal(wechatpay_row.secret_sealed) == stored(wechatpay_secret)


def test_one_secret_replaced_the_others_kept(admin_client, wechatpay_row, wechatpay_secret):
    before = dict(wechatpay_row.secret_hints)
    blank = {name: "" for name in wechatpay_secret}
    data = wechatpay_post({**blank, "api_v3_key": "d" * 32})
    assert admin_client.post(change_url(wechatpay_row), data).status_code == 302

    wechatpay_row.refresh_from_db()
    assert credentials.unseal(wechatpay_row.secret_sealed) == {
        **stored(wechatpay_secret),
        "api_v3_key": "d" * 32,
    }
    assert wechatpay_row.secret_hints["api_v3_key"] != before["api_v3_key"]
    assert wechatpay_row.secret_hints["private_key"] == before["private_key"]


def test_the_channel_never_changes(admin_client, alipay_row, alipay_secret):
    data = alipay_post({}, channel="wechatpay")
    assert admin_client.post(change_url(alipay_row), data).status_code == 302
    alipay_row.refresh_from_db()
    assert alipay_row.channel == "alipay"


def test_a_lost_key_asks_for_every_secret_again(admin_client, settings, alipay_row, alipay_secret):
    settings.PAYMENT_CREDENTIALS_KEYS = [credentials.new_key()]
    html = page(admin_client, change_url(alipay_row))
    assert "cannot be opened" in html and "Enter every secret field again" in html

    response = admin_client.post(change_url(alipay_row), alipay_post({}))
    assert response.status_code == 200
    assert "cannot be opened" in response.content.decode()

    response = admin_client.post(change_url(alipay_row), alipay_post(alipay_secret))
    assert response.status_code == 302
    alipay_row.refresh_from_db()
    assert credentials.unseal(alipay_row.secret_sealed) == stored(alipay_secret)


# ---- never deleted ----


def test_accounts_are_deactivated_never_deleted(admin_client, alipay_row):
    delete = reverse("admin:payments_paymentintegration_delete", args=[alipay_row.pk])
    assert admin_client.get(delete).status_code == 403
    assert "delete_selected" not in page(admin_client, LIST)

    data = {"action": "deactivate", "_selected_action": [alipay_row.pk]}
    assert admin_client.post(LIST, data).status_code == 302
    alipay_row.refresh_from_db()
    assert alipay_row.active is False


# ---- staff limited to some creators ----


def agent(*creators):
    user = UserFactory(is_staff=True)
    codenames = ("view_paymentintegration", "change_paymentintegration", "add_paymentintegration")
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    for creator in creators:
        StaffCreator.objects.create(user=user, creator_bid=creator)
    return user


def test_staff_limited_to_creators_are_granted_nothing_on_accounts(
    client, alipay_row, wechatpay_row
):
    client.force_login(agent("creator-a"))
    assert client.get(LIST).status_code == 403
    assert client.get(change_url(alipay_row)).status_code == 403
    assert "paymentintegration" not in page(client, reverse("admin:index"))


def test_even_if_granted_a_limited_account_reaches_only_its_creators(
    client, monkeypatch, alipay_row, wechatpay_row, alipay_secret
):
    from orders import auth

    granted = {"payments.view_paymentintegration", "payments.change_paymentintegration",
               "payments.add_paymentintegration"}  # fmt: skip
    monkeypatch.setattr(auth, "SCOPED_PERMISSIONS", auth.SCOPED_PERMISSIONS | granted)
    client.force_login(agent("creator-a"))

    listing = page(client, LIST)
    assert alipay_row.integration_bid in listing
    assert wechatpay_row.integration_bid not in listing
    response = client.get(change_url(wechatpay_row))
    assert response.status_code == 302  # the admin's "does not exist"
    assert "B&#x27;s WeChat Pay" not in client.get(response.url).content.decode()

    data = alipay_post(alipay_secret, creator_bid="creator-b")
    response = client.post(f"{ADD}?channel=alipay", data)
    assert response.status_code == 200
    assert "your own creators only" in response.content.decode()
