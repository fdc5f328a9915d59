"""Answers bound to what was asked: a provider's answer (sync, reconciliation, a
refund's) that names another attempt or refund is never applied, whichever account's
keys signed it; an attempt keeps the account that made it when its order moves to
another; a creator's integration cannot point this service at an address of its
choosing."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders import services
from orders.models import OrderStatus, RefundStatus
from payments import integrations, registry
from payments.models import AlipayOrder
from payments.providers.alipay import AlipayProvider, api, sign
from payments.providers.alipay.config import AlipayConfig
from payments.providers.base import ProviderBadResponse, ProviderError
from payments.providers.wechatpay import WechatpayProvider
from tests.alipay import private_pem, public_pem
from tests.factories import ProductFactory
from tests.orders.accounts import CREATOR, OTHER, _account, creators_order
from tests.wechatpay import (
    creator_double,
    creator_fields,
    wechatpay_cert_pem,
    wechatpay_private_pem,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sealing_key")]


def _answer_as(account, victim_double, victim_bid: str, own_bid: str) -> None:
    """The other creator's gateway answers a query of its own trade with the victim's."""
    forged = copy.deepcopy(victim_double.trades[victim_bid])
    forged.update(created=True, trade_status="TRADE_SUCCESS", send_pay_date="2026-01-01 10:00:00")
    account.double.trades[own_bid] = forged


def test_a_sync_answer_naming_another_creators_attempt_is_not_applied(mine, theirs):
    victim, victim_attempt = creators_order(creator_bid=CREATOR)
    own, own_attempt = creators_order(creator_bid=OTHER)
    _answer_as(theirs, mine.double, victim_attempt.attempt_bid, own_attempt.attempt_bid)
    with pytest.raises(ProviderBadResponse) as refused:
        services.payment_sync(order=own)
    assert refused.value.channel == "alipay"
    victim.refresh_from_db()
    assert victim.status == OrderStatus.UNPAID


def test_a_reconciliation_answer_naming_the_platforms_attempt_is_not_applied(theirs, alipay_double):
    victim, victim_attempt = creators_order(creator_bid="someone-else")
    _, own_attempt = creators_order(creator_bid=OTHER)
    _answer_as(theirs, alipay_double, victim_attempt.attempt_bid, own_attempt.attempt_bid)
    stale = timezone.now() - timedelta(minutes=10)
    AlipayOrder.objects.filter(pk=own_attempt.pk).update(created_at=stale, updated_at=stale)
    report = services.payments_reconcile(older_than_seconds=60)
    assert report.errors and report.settled == 0
    victim.refresh_from_db()
    assert victim.status == OrderStatus.UNPAID


def test_a_refund_answer_naming_another_refund_is_not_applied(
    settings, client, wechatpay_channel, wechatpay_keys, wechatpay_double
):
    def paid_order(creator_bid: str):
        product = ProductFactory(price=Decimal("9.90"), currency="cny", creator_bid=creator_bid)
        order, _ = services.order_create(
            user_bid=f"b-{creator_bid}", product_bid=product.product_bid
        )
        bid = services.payment_start(order=order, method="wx_pub_qr").attempt.attempt_bid
        return order, bid

    victim, victim_bid = paid_order("someone-else")
    wechatpay_double.pay(victim_bid)
    services.payment_sync(order=victim)
    wechatpay_double.refund_status = "PROCESSING"
    victim.refresh_from_db()
    pending = services.refund_request(order=victim, reason="asked")
    assert pending.status == RefundStatus.PENDING

    public, secret = creator_fields(wechatpay_keys)
    with creator_double(wechatpay_keys, public, secret) as other:
        integrations.integration_save(
            channel="wechatpay",
            creator_bid=OTHER,
            public={**public, "base_url": other.base_url},
            secret=secret,
        )
        own, own_bid = paid_order(OTHER)
        other.pay(own_bid)
        services.payment_sync(order=own)
        real = other._refund

        def lying(params):
            answer = copy.deepcopy(real(params))
            answer.update(out_refund_no=pending.refund_bid, status="SUCCESS")
            return answer

        other._refund = lying
        own.refresh_from_db()
        with pytest.raises(ProviderError):
            services.refund_request(order=own, reason="asked")
    pending.refresh_from_db()
    assert pending.status == RefundStatus.PENDING


def test_a_platform_attempt_stays_the_platforms_when_the_order_moves_to_a_creators_account(
    client, settings, alipay_channel, creator_keys
):
    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = ["sandbox", "alipay"]
    product = ProductFactory(price=Decimal("29.90"), currency="cny", creator_bid=CREATOR)
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    first = services.payment_start(order=order, channel="sandbox")
    account = _account(CREATOR, "2021000000000777", creator_keys["app"], creator_keys["alipay"])
    creators = next(account)
    services.payment_start(order=order, channel="alipay", method="alipay_qr")
    order.refresh_from_db()
    assert order.payment_integration_bid == creators.integration_bid
    # The buyer pays the first attempt after all, with the platform's sandbox.
    body, headers = registry.get_provider_any("sandbox").complete(
        first.attempt.attempt_bid, succeeded=True
    )
    response = client.post(
        "/webhooks/sandbox/", body, content_type="application/json", headers=headers
    )
    assert response.status_code == 200, response.content
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.payment_integration_bid == ""
    next(account, None)


def test_a_platform_row_keeps_the_platforms_account_when_its_order_moves(
    alipay_channel, alipay_double, mine
):
    order, attempt = creators_order(creator_bid="someone-else")  # the platform's account
    AlipayOrder.objects.filter(pk=attempt.pk).update(metadata={})  # as the platform wrote it
    # The course changes hands to a creator with an account of its own.
    type(order).objects.filter(pk=order.pk).update(creator_bid=CREATOR)
    order.refresh_from_db()
    services.payment_start(order=order, method="alipay_qr")
    attempt.refresh_from_db()
    assert attempt.integration_bid == ""  # pinned before the order moved
    order.refresh_from_db()
    assert order.payment_integration_bid == mine.integration_bid


def test_an_answer_repeating_its_signed_key_is_refused(alipay, alipay_keys):
    genuine = json.dumps({"code": "10000", "msg": "Success", "out_trade_no": "a1",
                          "trade_status": "WAIT_BUYER_PAY", "total_amount": "29.90"},
                         separators=(",", ":"))  # fmt: skip
    forged = json.dumps({"code": "10000", "out_trade_no": "a1", "trade_status": "TRADE_SUCCESS",
                         "total_amount": "29.90"}, separators=(",", ":"))  # fmt: skip
    signature = sign.sign(alipay_keys.alipay, genuine)
    for body in (
        f'{{"alipay_trade_query_response":{genuine},'
        f'"alipay_trade_query_response":{forged},"sign":"{signature}"}}',
        f'{{"alipay_trade_query_response":{genuine[:-1]},"trade_status":"TRADE_SUCCESS"}},'
        f'"sign":"{signature}"}}',
    ):
        with pytest.raises(ProviderBadResponse):
            api._verified(alipay.config, "alipay.trade.query", body, "trade.query")


@pytest.mark.parametrize(
    "url",
    ["http://openapi.alipay.com/gateway.do", "https://10.0.0.5/gateway.do",
     "https://evil.example/gateway.do", "http://127.0.0.1:9/gateway.do"],
)  # fmt: skip
def test_a_creators_gateway_is_alipays_own_or_the_platforms(alipay_settings, alipay_keys, url):
    alipay_settings.ALIPAY_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
    secret = {
        "app_private_key": private_pem(alipay_keys.app),
        "alipay_public_key": public_pem(alipay_keys.alipay),
    }
    problems = AlipayProvider.merchant_problems({"app_id": "2021", "gateway_url": url}, secret)
    assert any("API URL" in problem for problem in problems)
    ok = {"app_id": "2021", "gateway_url": "https://openapi.alipay.com/gateway.do"}
    assert AlipayProvider.merchant_problems(ok, secret) == []
    sandbox = {
        "app_id": "2021",
        "gateway_url": "https://openapi-sandbox.dl.alipaydev.com/gateway.do",
    }
    assert AlipayProvider.merchant_problems(sandbox, secret) == []


def test_a_creators_wechat_pay_url_is_wechat_pays_own(wechatpay_settings, wechatpay_keys):
    public = {"app_id": "wx1", "mch_id": "1900000001", "merchant_serial_no": "5157",
              "base_url": "https://169.254.169.254"}  # fmt: skip
    secret = {"api_v3_key": "c" * 32, "private_key": wechatpay_private_pem(wechatpay_keys.stranger),
              "platform_cert": wechatpay_cert_pem(wechatpay_keys.platform_cert)}  # fmt: skip
    assert any("API URL" in p for p in WechatpayProvider.merchant_problems(public, secret))
    public["base_url"] = "https://api.mch.weixin.qq.com"
    assert WechatpayProvider.merchant_problems(public, secret) == []


def test_an_alipay_configuration_never_shows_its_keys(alipay_keys):
    config = AlipayConfig.from_merchant(
        integration_bid="i1",
        public={"app_id": "2021"},
        secret={
            "app_private_key": private_pem(alipay_keys.app),
            "alipay_public_key": public_pem(alipay_keys.alipay),
        },
    )
    assert "PRIVATE" not in repr(config) and private_pem(alipay_keys.app)[40:80] not in repr(config)


def test_an_event_id_taken_first_by_another_account_does_not_hide_the_genuine_one(
    client, mine, theirs
):
    order, attempt = creators_order()
    mine.double.pay(attempt.attempt_bid)
    theirs.double.trades[attempt.attempt_bid] = dict(mine.double.trades[attempt.attempt_bid])
    forged = theirs.double.notification(attempt.attempt_bid, notify_id="n-1")
    genuine = mine.double.notification(attempt.attempt_bid, notify_id="n-1")
    form = "application/x-www-form-urlencoded"
    assert client.post(theirs.url, forged, content_type=form).status_code == 400
    assert client.post(mine.url, genuine, content_type=form).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


def test_a_platform_row_that_records_no_expiry_closes_after_the_orders_time_out(
    alipay_channel, alipay, settings
):
    _, attempt = creators_order(creator_bid="someone-else")
    AlipayOrder.objects.filter(pk=attempt.pk).update(metadata={})  # as the platform wrote it
    attempt.refresh_from_db()
    assert alipay.fetch_payment(attempt.attempt_bid).state == "pending"  # not scanned yet
    old = timezone.now() - timedelta(seconds=settings.PAY_ORDER_EXPIRE_SECONDS + 120)
    AlipayOrder.objects.filter(pk=attempt.pk).update(created_at=old)
    assert alipay.fetch_payment(attempt.attempt_bid).state == "closed"
