"""The stable Stripe webhook URL and the command that sets up its endpoint row."""

import pytest
from django.core.management import CommandError, call_command
from djstripe.models import WebhookEndpoint

from payments.models import InboxStatus, WebhookEvent
from payments.stripe_webhooks import HANDLED_EVENTS

SECRET = "whsec_" + "s" * 32


@pytest.fixture
def stripe_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    return settings


@pytest.mark.django_db
def test_the_command_creates_then_updates_the_endpoint_row(stripe_secret, capsys):
    call_command("stripe_webhook_endpoint", url="https://pay.example.com/webhooks/stripe/")
    assert "Created webhook endpoint" in capsys.readouterr().out
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == SECRET
    assert endpoint.djstripe_tolerance == 300
    assert endpoint.djstripe_validation_method == "verify_signature"
    assert set(endpoint.enabled_events) == set(HANDLED_EVENTS)
    assert endpoint.livemode is False

    call_command("stripe_webhook_endpoint")
    assert "Updated webhook endpoint" in capsys.readouterr().out
    assert WebhookEndpoint.objects.count() == 1
    assert WebhookEndpoint.objects.get().url == "https://pay.example.com/webhooks/stripe/"


@pytest.mark.django_db
@pytest.mark.parametrize("secret", ["", "not-a-whsec"])
def test_the_command_needs_a_webhook_secret(settings, secret):
    settings.STRIPE_WEBHOOK_SECRET = secret
    with pytest.raises(CommandError, match="STRIPE_WEBHOOK_SECRET"):
        call_command("stripe_webhook_endpoint")
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_without_a_webhook_secret_the_url_answers_503(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = client.post("/webhooks/stripe/", b"{}", content_type="application/json",
                           headers={"stripe-signature": "t=1,v1=00"})  # fmt: skip
    assert response.status_code == 503
    assert response.json()["code"] == "webhook_not_configured"


@pytest.mark.django_db
def test_a_forged_signature_is_refused_and_nothing_processed(client, stripe_secret):
    from djstripe.models import Event, WebhookEventTrigger

    call_command("stripe_webhook_endpoint")
    body = (
        b'{"id": "evt_forged", "object": "event", "livemode": false, '
        b'"type": "payment_intent.succeeded", "data": {"object": {}}}'
    )
    response = client.post("/webhooks/stripe/", body, content_type="application/json",
                           headers={"stripe-signature": "t=1700000000,v1=" + "0" * 64})  # fmt: skip
    assert response.status_code == 401
    assert response.json()["code"] == "webhook_signature_invalid"
    # Refused before dj-stripe, which would store every forged body whole: recorded in
    # the bounded inbox instead.
    assert not WebhookEventTrigger.objects.exists()
    assert not Event.objects.exists()
    row = WebhookEvent.objects.get(channel="stripe")
    assert row.status == InboxStatus.REJECTED and row.body_bytes == len(body)


@pytest.mark.django_db
def test_forged_or_oversized_stripe_deliveries_stay_bounded(client, stripe_secret, settings):
    from djstripe.models import WebhookEventTrigger

    call_command("stripe_webhook_endpoint")
    settings.WEBHOOK_MAX_BODY_BYTES = 4096
    settings.WEBHOOK_REJECTED_ROWS_PER_HOUR = 3
    forged = [b'{"id": "evt_%d", "pad": "%s"}' % (i, b"p" * 3000) for i in range(10)]
    forged_signature = {"stripe-signature": "t=1700000000,v1=" + "0" * 64}
    for body in forged:
        response = client.post(
            "/webhooks/stripe/", body, content_type="application/json", headers=forged_signature
        )
        assert response.status_code == 401
    big = client.post("/webhooks/stripe/", b"x" * 5000, content_type="application/json")
    assert big.status_code == 413 and big.json()["code"] == "webhook_body_too_large"
    assert not WebhookEventTrigger.objects.exists()
    rows = WebhookEvent.objects.filter(channel="stripe")
    assert rows.count() == 5  # 3 detailed, one overflow row counting 7, one too large
    assert sum(r.repeats for r in rows) == 11
    assert all(len(r.body) <= 2048 for r in rows)


@pytest.mark.django_db
def test_register_creates_the_endpoint_at_stripe_and_stores_its_secret(settings, capsys):
    from tests.payments.stripe_fakes import FakeStripe

    secret_key = "sk_test_" + "e" * 24
    with FakeStripe(secret_key=secret_key) as fake:
        settings.STRIPE_API_BASE = fake.base_url
        settings.STRIPE_SECRET_KEY = secret_key
        settings.STRIPE_WEBHOOK_SECRET = ""
        call_command("stripe_webhook_endpoint", register="https://pay.example.com/webhooks/stripe/")
    (registered,) = fake.webhook_endpoints
    (sent,) = fake.posts("/v1/webhook_endpoints")
    assert sent["idempotency_key"].startswith("webhook-endpoint-")
    assert sent["params"]["api_version"]
    assert registered["url"] == "https://pay.example.com/webhooks/stripe/"
    assert set(registered["enabled_events"]) == set(HANDLED_EVENTS)
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.id, endpoint.secret) == (registered["id"], registered["secret"])
    assert f"STRIPE_WEBHOOK_SECRET={registered['secret']}" in capsys.readouterr().out


@pytest.mark.django_db
def test_account_id_records_the_owner_of_the_secret_key_once(stripe_secret):
    from djstripe.models import Account, APIKey

    stripe_secret.STRIPE_SECRET_KEY = "sk_test_" + "k" * 24
    for _ in range(2):
        call_command("stripe_webhook_endpoint", account_id="acct_local")
    key = APIKey.objects.get()
    assert key.secret == stripe_secret.STRIPE_SECRET_KEY
    assert key.djstripe_owner_account == Account.objects.get(id="acct_local")


@pytest.mark.django_db
def test_a_request_naming_its_own_signing_secret_is_refused(client, stripe_secret):
    call_command("stripe_webhook_endpoint")
    stripe_secret.DEBUG = True  # where dj-stripe would honour the header
    response = client.post(
        "/webhooks/stripe/", b"{}", content_type="application/json",
        headers={"stripe-signature": "t=1,v1=00", "x-djstripe-webhook-secret": "whsec_mine"},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_signature_invalid"


@pytest.mark.django_db
def test_a_forged_stripe_delivery_logs_one_warning_not_a_traceback(client, stripe_secret):
    """dj-stripe's check logs every failure as an ERROR with a traceback, which anyone
    could flood; the service's own bounded record (one warning) is what remains."""
    import logging

    from payments_project.logging import logging_config

    call_command("stripe_webhook_endpoint")
    logging.config.dictConfig(logging_config(log_format="text", level="INFO"))
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    keep = Keep()
    root = logging.getLogger()
    root.addHandler(keep)
    try:
        response = client.post(
            "/webhooks/stripe/",
            b'{"id": "evt_forged"}',
            content_type="application/json",
            headers={"stripe-signature": "t=1700000000,v1=" + "0" * 64},
        )
    finally:
        root.removeHandler(keep)
    assert response.status_code == 401
    assert not [r for r in seen if r.getMessage() == "Failed to verify header"]
    assert [r.levelname for r in seen if r.getMessage().startswith("webhook rejected")] == [
        "WARNING"
    ]
