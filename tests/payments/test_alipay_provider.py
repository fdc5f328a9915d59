"""The Alipay provider against its loopback gateway: RSA2 both ways, each call, each
refusal, and notifications verified with Alipay's key."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
from django.utils import timezone

from payments import attempts
from payments.models import AlipayOrder, AttemptStatus
from payments.providers.alipay import AlipayProvider
from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    PAYMENT_CLOSED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    CurrencyNotSupported,
    PaymentRequest,
    ProviderBadResponse,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundRequest,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from payments_project.db import new_bid
from tests.alipay import ALIPAY_APP_ID, private_pem, public_pem

pytestmark = pytest.mark.django_db


def request(method: str = "alipay_qr", amount: int = 29900, **extra) -> PaymentRequest:
    values = {
        "channel": "alipay",
        "method": method,
        "order_bid": new_bid(),
        "attempt_bid": new_bid(),
        "user_bid": "u1",
        "product_bid": "p1",
        "amount": amount,
        "currency": "cny",
        "subject": "Course",
        "body": "Course (order)",
        "success_url": "https://shop.example.test/done",
        "expires_at": timezone.now() + timedelta(minutes=30),
        **extra,
    }
    return PaymentRequest(**values)


def started(provider: AlipayProvider, method: str = "alipay_qr", **extra):
    """An attempt row made and started, as the services make it."""
    req = request(method, **extra)
    attempt, _ = attempts.attempt_create(provider, req)
    start = provider.start_payment(req)
    attempts.attempt_started(provider, attempt, start)
    return attempt, start


def refund_request(out_trade_no: str, amount: int, refund_bid: str = "") -> RefundRequest:
    return RefundRequest(
        channel="alipay",
        refund_bid=refund_bid or new_bid(),
        provider_payment_id=out_trade_no,
        amount=amount,
        currency="cny",
        reason="asked",
    )


def test_precreate_gives_a_qr_code_signed_both_ways(alipay, alipay_double):
    attempt, start = started(alipay)
    assert start.client_data["qr_url"].startswith("https://qr.alipay.com/")
    assert start.provider_payment_id == attempt.attempt_bid == attempt.provider_attempt_id
    sent = alipay_double.requests[-1]["params"]
    assert sent["method"] == "alipay.trade.precreate" and sent["sign_type"] == "RSA2"
    assert sent["notify_url"] == "https://pay.example.test/webhooks/alipay/"
    assert '"total_amount":"299.00"' in sent["biz_content"]
    assert '"time_expire":"' in sent["biz_content"]
    row = AlipayOrder.objects.get(pk=attempt.pk)
    assert row.channel == "alipay_qr" and row.currency == "CNY" and row.status == 0
    assert alipay.client_data(row)["qr_url"] == start.client_data["qr_url"]


def test_pages_are_signed_urls_the_gateway_accepts(alipay, alipay_double):
    for method, api_method in (
        ("alipay_pc_direct", "alipay.trade.page.pay"),
        ("alipay_wap", "alipay.trade.wap.pay"),
    ):
        attempt, start = started(alipay, method)
        url = start.client_data["redirect_url"]
        params = dict(parse_qsl(url.split("?", 1)[1]))
        assert params["method"] == api_method and params["return_url"].endswith("/done")
        trade = alipay_double.open_page(url)
        assert trade["out_trade_no"] == attempt.attempt_bid
        assert alipay.fetch_payment(attempt.attempt_bid).state == PAYMENT_PENDING


def test_a_trade_is_read_as_paid_with_its_amount_and_alipay_number(alipay, alipay_double):
    attempt, _ = started(alipay, amount=1990)
    alipay_double.pay(attempt.attempt_bid)
    state = alipay.fetch_payment(attempt.attempt_bid)
    assert state.state == PAYMENT_SUCCEEDED
    assert (state.amount, state.currency) == (1990, "cny")
    assert state.transaction_no == alipay_double.trades[attempt.attempt_bid]["trade_no"]
    assert state.paid_at is not None


def test_an_unscanned_qr_code_is_pending_until_it_expires_then_closed(alipay, alipay_double):
    attempt, _ = started(alipay)
    assert alipay.fetch_payment(attempt.attempt_bid).state == PAYMENT_PENDING
    assert alipay.close_payment(attempt).state == PAYMENT_PENDING  # nothing to close yet
    attempt.metadata = {
        **attempt.metadata,
        "expires_at": (timezone.now() - timedelta(hours=1)).isoformat(),
    }
    attempt.save(update_fields=["metadata"])
    state = alipay.close_payment(AlipayOrder.objects.get(pk=attempt.pk))
    assert (state.state, state.amount) == (PAYMENT_CLOSED, attempt.amount)


def test_close_closes_a_scanned_trade_and_answers_paid_for_a_paid_one(alipay, alipay_double):
    attempt, _ = started(alipay)
    alipay_double.scan(attempt.attempt_bid)
    assert alipay.close_payment(attempt).state == PAYMENT_CLOSED
    assert alipay_double.trades[attempt.attempt_bid]["trade_status"] == "TRADE_CLOSED"
    paid, _ = started(alipay)
    alipay_double.pay(paid.attempt_bid)
    assert alipay.close_payment(paid).state == PAYMENT_SUCCEEDED


def test_an_attempt_that_never_started_closes_without_a_call(alipay, alipay_double):
    req = request()
    attempt, _ = attempts.attempt_create(alipay, req)
    before = len(alipay_double.requests)
    assert alipay.close_payment(attempt).state == PAYMENT_CLOSED
    assert len(alipay_double.requests) == before


def test_refunds_in_parts_never_above_the_trade_and_idempotent_per_request(alipay, alipay_double):
    attempt, _ = started(alipay, amount=10000)
    alipay_double.pay(attempt.attempt_bid)
    first = refund_request(attempt.attempt_bid, 4000)
    state = alipay.refund(first)
    assert (state.state, state.amount, state.refund_bid) == (
        REFUND_SUCCEEDED,
        4000,
        first.refund_bid,
    )
    assert state.provider_refund_id == first.refund_bid
    again = alipay.refund(first)  # a retry of the same refund moves no money
    assert (again.state, again.amount) == (REFUND_SUCCEEDED, 4000)
    assert alipay_double._refunded(alipay_double.trades[attempt.attempt_bid]) == "40.00"
    with pytest.raises(ProviderRequestRefused) as refused:
        alipay.refund(refund_request(attempt.attempt_bid, 6001))
    assert refused.value.details["provider_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert alipay.fetch_refund(attempt.attempt_bid, first.refund_bid).amount == 4000
    assert alipay.find_refund(attempt.attempt_bid, new_bid()) is None


def test_a_refund_without_money_moved_yet_is_pending(alipay, alipay_double):
    attempt, _ = started(alipay, amount=500)
    alipay_double.pay(attempt.attempt_bid)
    alipay_double.fund_change = "N"
    assert alipay.refund(refund_request(attempt.attempt_bid, 500)).state == REFUND_PENDING


def test_only_cny(alipay):
    with pytest.raises(CurrencyNotSupported):
        alipay.start_payment(request(currency="usd"))


def test_outages_and_busy_answers_are_unavailable(alipay, alipay_double):
    alipay_double.fail_next(502)
    with pytest.raises(ProviderUnavailable):
        alipay.start_payment(request())
    alipay_double.fail_next("busy")
    with pytest.raises(ProviderUnavailable):
        alipay.fetch_payment(new_bid())


def test_a_request_signed_with_another_key_is_refused(alipay_settings, alipay_keys):
    alipay_settings.ALIPAY_APP_PRIVATE_KEY = private_pem(alipay_keys.stranger)
    with pytest.raises(ProviderRequestRefused) as refused:
        AlipayProvider().start_payment(request())
    assert refused.value.details["provider_code"].startswith("unsigned:")


def test_an_answer_not_signed_by_alipay_is_never_believed(alipay, alipay_double, alipay_keys):
    attempt, _ = started(alipay)
    alipay_double.pay(attempt.attempt_bid)
    alipay_double.answer_key = alipay_keys.stranger
    with pytest.raises(ProviderBadResponse):
        alipay.fetch_payment(attempt.attempt_bid)


def test_a_notification_is_verified_and_read(alipay, alipay_double):
    attempt, _ = started(alipay, amount=2500)
    alipay_double.pay(attempt.attempt_bid)
    event = alipay.parse_webhook(alipay_double.notification(attempt.attempt_bid), {})
    assert event.kind == EVENT_PAYMENT and event.event_type == "trade_status_sync.TRADE_SUCCESS"
    assert event.payment.state == PAYMENT_SUCCEEDED
    assert (event.payment.amount, event.payment.app_id) == (2500, ALIPAY_APP_ID)
    assert event.payment.provider_payment_id == attempt.attempt_bid
    assert "sign" not in event.raw
    assert alipay.event_from_payload(event.raw) == event


def test_a_refund_notification_is_kept_but_not_applied(alipay, alipay_double):
    attempt, _ = started(alipay)
    alipay_double.pay(attempt.attempt_bid)
    body = alipay_double.notification(attempt.attempt_bid, out_biz_no=new_bid(), refund_fee="1.00")
    assert alipay.parse_webhook(body, {}).kind == EVENT_OTHER


@pytest.mark.parametrize("tamper", ["forged", "edited", "unsigned", "other_type"])
def test_forged_notifications_are_refused(alipay, alipay_double, alipay_keys, tamper):
    attempt, _ = started(alipay)
    alipay_double.pay(attempt.attempt_bid)
    if tamper == "forged":
        body = alipay_double.notification(attempt.attempt_bid, key=alipay_keys.stranger)
    else:
        body = alipay_double.notification(attempt.attempt_bid)
    if tamper == "edited":
        body = body.replace(b"total_amount=299.00", b"total_amount=2.99")
    if tamper == "unsigned":
        body = b"&".join(part for part in body.split(b"&") if not part.startswith(b"sign="))
    if tamper == "other_type":
        body = body.replace(b"sign_type=RSA2", b"sign_type=RSA")
    with pytest.raises(WebhookSignatureInvalid):
        alipay.parse_webhook(body, {})


def test_a_notification_that_is_not_a_form_or_lacks_an_id_is_malformed(alipay, alipay_double):
    with pytest.raises((WebhookPayloadInvalid, WebhookSignatureInvalid)):
        alipay.parse_webhook(b"\xff\xfe", {})
    attempt, _ = started(alipay)
    alipay_double.pay(attempt.attempt_bid)
    body = alipay_double.notification(attempt.attempt_bid, notify_id="")
    with pytest.raises(WebhookPayloadInvalid):
        alipay.parse_webhook(body, {})


def test_an_unconfigured_default_starts_and_refuses(settings):
    settings.ALIPAY_APP_ID = settings.ALIPAY_APP_PRIVATE_KEY = settings.ALIPAY_PUBLIC_KEY = ""
    provider = AlipayProvider()
    with pytest.raises(ProviderRequestRefused):
        provider.start_payment(request())
    with pytest.raises(WebhookNotConfigured):
        provider.parse_webhook(b"a=b", {})


def test_a_merchant_of_its_own(alipay_settings, alipay_keys, alipay_double):
    public = {"app_id": "2021000000000777", "gateway_url": alipay_double.gateway_url}
    secret = {
        "app_private_key": private_pem(alipay_keys.stranger),
        "alipay_public_key": public_pem(alipay_keys.alipay),
    }
    provider = AlipayProvider.for_merchant(integration_bid="i" * 32, public=public, secret=secret)
    assert provider.app_id == "2021000000000777"
    assert provider.config.notify_url == f"https://pay.example.test/webhooks/alipay/{'i' * 32}/"
    assert AlipayProvider.merchant_problems(public, secret) == []
    assert AlipayProvider.merchant_problems(public, {**secret, "app_private_key": "nonsense"})
    assert AlipayProvider.merchant_problems({}, secret) == ["app_id is missing"]


def test_rows_follow_the_platforms_layout(alipay, alipay_double):
    attempt, _ = started(alipay)
    alipay_double.pay(attempt.attempt_bid)
    state = alipay.fetch_payment(attempt.attempt_bid)
    row = AlipayOrder.objects.get(pk=attempt.pk)
    attempts.attempt_reported(alipay, row, state)
    row.refresh_from_db()
    assert row.status == AttemptStatus.PAID and row.raw_status == "TRADE_SUCCESS"
    assert row.transaction_id == state.transaction_no
    assert list(alipay.attempts_for(provider_payment_id=attempt.attempt_bid)) == [row]
