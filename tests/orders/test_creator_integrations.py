"""Creators' own merchant accounts, end to end: an order of a creator with an Alipay or
WeChat Pay account of its own is paid, notified, refunded and reconciled with that
account's keys, for good; no other account's keys (another creator's, the platform's)
can settle it."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders import services
from orders.models import Attention, AttentionKind, OrderStatus, RefundStatus
from payments import credentials, integrations
from payments.integrations import IntegrationMissing
from payments.models import AlipayOrder, InboxStatus, WebhookEvent, WechatpayOrder
from tests.alipay import private_pem, public_pem
from tests.factories import OrderFactory, ProductFactory
from tests.orders.accounts import CREATOR, creators_order
from tests.orders.test_platform_rows import native_attempt
from tests.payments.alipay_double import AlipayDouble
from tests.wechatpay import WECHATPAY_MCH_ID, creator_double, creator_fields

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sealing_key")]


def post(client, url: str, body: bytes):
    return client.post(url, body, content_type="application/x-www-form-urlencoded")


def test_a_creators_order_is_paid_into_its_own_account(client, mine, alipay_double):
    order, attempt = creators_order()
    assert order.payment_integration_bid == attempt.integration_bid == mine.integration_bid
    assert attempt.attempt_bid in mine.double.trades
    assert attempt.attempt_bid not in alipay_double.trades  # never the platform's account
    sent = mine.double.requests[-1]["params"]
    assert sent["app_id"] == "2021000000000777"
    assert sent["notify_url"].endswith(f"/webhooks/alipay/{mine.integration_bid}/")

    mine.double.pay(attempt.attempt_bid)
    response = post(client, mine.url, mine.double.notification(attempt.attempt_bid))
    assert response.status_code == 200 and response.content == b"success"
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert WebhookEvent.objects.get().integration_bid == mine.integration_bid

    refund = services.refund_request(order=order, amount=Decimal("9.90"), reason="asked")
    assert refund.status == RefundStatus.SUCCEEDED
    assert mine.double._refunded(mine.double.trades[attempt.attempt_bid]) == "9.90"


def test_refunds_and_reconciliation_keep_the_account_that_took_the_money(
    mine, creator_keys, alipay_double
):
    order, attempt = creators_order()
    mine.double.pay(attempt.attempt_bid)
    stale = timezone.now() - timedelta(minutes=10)
    AlipayOrder.objects.filter(pk=attempt.pk).update(created_at=stale, updated_at=stale)
    assert services.payments_reconcile(older_than_seconds=60).settled == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID

    # The creator moves to a new account and switches the old one off: the order is
    # still refunded through the account that was paid.
    integrations.PaymentIntegration.objects.filter(integration_bid=mine.integration_bid).update(
        active=False
    )
    with AlipayDouble(
        app_id="2021000000000999", app_public_key=creator_keys["app"].public_key(),
        alipay_key=creator_keys["alipay"],
    ) as newer:  # fmt: skip
        integrations.integration_save(
            channel="alipay",
            creator_bid=CREATOR,
            public={"app_id": "2021000000000999", "gateway_url": newer.gateway_url},
            secret={
                "app_private_key": private_pem(creator_keys["app"]),
                "alipay_public_key": public_pem(creator_keys["alipay"]),
            },
        )
        refund = services.refund_request(order=order, reason="asked")
        assert refund.status == RefundStatus.SUCCEEDED
        assert newer.requests == []
    assert mine.double._refunded(mine.double.trades[attempt.attempt_bid]) == "29.90"
    assert alipay_double.requests == []


def test_another_creators_keys_never_settle_its_order(client, mine, theirs):
    order, attempt = creators_order()
    mine.double.pay(attempt.attempt_bid)
    # The other creator's gateway, holding a trade of the same number, signs with its
    # own key: verified at its own URL, then refused for naming this creator's payment.
    theirs.double.trades[attempt.attempt_bid] = dict(mine.double.trades[attempt.attempt_bid])
    # Naming this creator's app, it is refused as another app's.
    posing = theirs.double.notification(attempt.attempt_bid, app_id="2021000000000777")
    assert post(client, theirs.url, posing).status_code == 400
    forged = theirs.double.notification(attempt.attempt_bid)
    response = post(client, theirs.url, forged)
    assert response.status_code == 400 and response.content == b"failure"
    assert response["X-Payment-Code"] == "payment_integration_mismatch"
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID
    row = WebhookEvent.objects.get(integration_bid=theirs.integration_bid, event_id__isnull=False)
    assert row.status == InboxStatus.REJECTED
    attention = Attention.objects.get(kind=AttentionKind.INTEGRATION_MISMATCH)
    assert attention.subject_bid == attempt.attempt_bid and attention.order_id == order.pk
    assert order.events.filter(data__code="payment_integration_mismatch").exists()

    # At this creator's own URL, the other key does not even verify.
    assert post(client, mine.url, forged).status_code == 401
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID


def test_the_platforms_keys_never_settle_a_creators_order(client, mine, alipay_double):
    order, attempt = creators_order()
    alipay_double.trades[attempt.attempt_bid] = dict(mine.double.trades[attempt.attempt_bid])
    alipay_double.pay(attempt.attempt_bid)
    response = post(client, "/webhooks/alipay/", alipay_double.notification(attempt.attempt_bid))
    assert response.status_code == 400
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID


def test_a_creators_keys_never_settle_the_platforms_orders(client, mine, alipay_double):
    order, attempt = creators_order(creator_bid="someone-else")
    assert order.payment_integration_bid == "" and attempt.integration_bid == ""
    mine.double.trades[attempt.attempt_bid] = dict(alipay_double.trades[attempt.attempt_bid])
    mine.double.pay(attempt.attempt_bid)
    body = mine.double.notification(attempt.attempt_bid, app_id=alipay_double.app_id)
    assert post(client, mine.url, body).status_code == 400
    order.refresh_from_db()
    assert order.status == OrderStatus.UNPAID


def test_a_creator_with_accounts_of_its_own_is_never_paid_into_the_platforms(
    mine, wechatpay_channel, settings
):
    settings.PAYMENT_CHANNELS_ENABLED = ["alipay", "wechatpay"]
    product = ProductFactory(price=Decimal("9.90"), currency="cny", creator_bid=CREATOR)
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    with pytest.raises(IntegrationMissing) as refused:
        services.payment_start(order=order, channel="wechatpay", method="wx_pub_qr")
    assert refused.value.http_status == 409 and "alipay" in refused.value.message
    assert not WechatpayOrder.objects.exists()


def test_the_stored_credentials_are_sealed(mine, creator_keys):
    row = integrations.PaymentIntegration.objects.get(integration_bid=mine.integration_bid)
    pem = private_pem(creator_keys["app"])
    stored = json.dumps(row.public_config) + row.secret_sealed + json.dumps(row.secret_hints)
    assert pem.splitlines()[1] not in stored
    assert credentials.unseal(row.secret_sealed)["app_private_key"] == pem.strip()
    assert row.secret_hints["app_private_key"].startswith("set · ")


def test_a_creators_wechat_pay_account_end_to_end(
    client, wechatpay_channel, wechatpay_keys, wechatpay_double
):
    public, secret = creator_fields(wechatpay_keys)
    with creator_double(wechatpay_keys, public, secret) as double:
        row = integrations.integration_save(
            channel="wechatpay",
            creator_bid=CREATOR,
            public={**public, "base_url": double.base_url},
            secret=secret,
        )
        product = ProductFactory(price=Decimal("9.90"), currency="cny", creator_bid=CREATOR)
        order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
        started = services.payment_start(order=order, method="wx_pub_qr")
        bid = started.attempt.attempt_bid
        double.pay(bid)
        body, headers = double.payment_notification(bid)
        # The platform's URL verifies with the platform's API v3 key: refused.
        platform = client.post(
            "/webhooks/wechatpay/", body, content_type="application/json", headers=headers
        )
        assert platform.status_code in (400, 401)
        mine = client.post(
            f"/webhooks/wechatpay/{row.integration_bid}/",
            body,
            content_type="application/json",
            headers=headers,
        )
        assert mine.status_code == 200, mine.content
        order.refresh_from_db()
        assert order.status == OrderStatus.PAID
        assert order.payment_integration_bid == row.integration_bid
        double.refund_status = "PROCESSING"
        refund = services.refund_request(order=order, reason="asked")
        assert refund.status == RefundStatus.PENDING
        assert [r["out_trade_no"] for r in double.refunds.values()] == [bid]

    # The platform's account vouching for this creator's refund: refused, listed.
    resource = {
        "mchid": WECHATPAY_MCH_ID, "out_trade_no": bid, "transaction_id": "4200x",
        "out_refund_no": refund.refund_bid, "refund_id": "50300x", "refund_status": "SUCCESS",
        "success_time": "2026-12-07T12:00:00+08:00", "user_received_account": "x",
        "amount": {"total": 990, "refund": 990, "payer_total": 990, "payer_refund": 990},
    }  # fmt: skip
    body, headers = wechatpay_double.notification("REFUND.SUCCESS", resource)
    response = client.post(
        "/webhooks/wechatpay/", body, content_type="application/json", headers=headers
    )
    assert response.status_code == 400, response.content
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == RefundStatus.PENDING and order.status == OrderStatus.PAID
    assert Attention.objects.filter(kind=AttentionKind.INTEGRATION_MISMATCH).exists()


def test_an_order_of_an_unknown_account_is_refused_not_sent_with_the_platforms(
    alipay_channel, alipay_double
):
    """The platform's row of an order paid into a creator account this service was never
    given: refused (409), and nothing is sent with the platform's keys."""
    order = OrderFactory(paid=True, payment_channel="alipay", payment_integration_bid="gone")
    native_attempt(AlipayOrder, order)
    with pytest.raises(integrations.IntegrationUnavailable) as refused:
        services.refund_request(order=order, reason="asked")
    assert refused.value.http_status == 409
    with pytest.raises(integrations.IntegrationUnavailable):
        services.payment_sync(order=order)
    assert alipay_double.requests == []
