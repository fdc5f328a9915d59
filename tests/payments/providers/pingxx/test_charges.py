"""Charges through the real pingpp SDK, against the loopback double."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC

import pytest

from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    CurrencyNotSupported,
    PaymentMethodInvalid,
    ProviderBadResponse,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundRequest,
)
from payments.providers.pingxx import PingxxProvider
from tests.payments.conftest import PINGXX_APP_ID, pem
from tests.payments.providers.pingxx.helpers import EXTRAS, QR_PREFIXES, payment_request, sent


@pytest.mark.parametrize("method", PingxxProvider.methods)
def test_start_payment_for_each_method(pingxx, pingxx_double, method):
    request = payment_request(method)
    start = pingxx.start_payment(request)

    body = sent(pingxx_double)
    assert body["order_no"] == request.attempt_bid
    assert body["channel"] == method
    assert body["app"] == {"id": PINGXX_APP_ID}
    assert (body["amount"], body["currency"], body["client_ip"]) == (1990, "cny", "203.0.113.7")
    assert body["extra"] == EXTRAS[method]
    assert body["metadata"] == {"order_bid": request.order_bid, "attempt_bid": request.attempt_bid}
    assert start.provider_payment_id.startswith("ch_")
    assert start.state == PAYMENT_PENDING
    assert start.raw["order_no"] == request.attempt_bid
    json.dumps(start.raw)  # plain data
    credential = start.client_data["credential"]
    assert type(credential) is dict and method in credential
    if method in QR_PREFIXES:
        assert start.client_data["qr_url"].startswith(QR_PREFIXES[method])
        assert start.client_data["qr_url"] == credential[method]
    else:
        assert start.client_data["qr_url"] == ""


def test_wx_wap_without_a_success_url_sends_no_extra(pingxx, pingxx_double):
    pingxx.start_payment(payment_request("wx_wap", success_url=""))
    assert sent(pingxx_double)["extra"] == {}


@pytest.mark.parametrize(
    "method,missing",
    [
        ("wx_pub_qr", {"product_bid": ""}),
        ("alipay_pc_direct", {"success_url": ""}),
        ("wx_pub", {"open_id": ""}),
        ("alipay_wap", {}),
        ("", {}),
    ],
)
def test_invalid_method_or_missing_extra_is_refused_before_any_call(
    pingxx, pingxx_double, method, missing
):
    with pytest.raises(PaymentMethodInvalid) as caught:
        pingxx.start_payment(payment_request(method, **missing))
    assert caught.value.channel == "pingxx"
    assert caught.value.http_status == 400
    assert pingxx_double.requests == []


@pytest.mark.parametrize("currency", ["usd", "USD", "jpy", ""])
def test_other_currencies_are_refused_before_any_call(pingxx, pingxx_double, currency):
    with pytest.raises(CurrencyNotSupported):
        pingxx.start_payment(payment_request(currency=currency))
    with pytest.raises(CurrencyNotSupported):
        pingxx.refund(
            RefundRequest(
                channel="pingxx",
                refund_bid="r" * 32,
                provider_payment_id="ch_x",
                amount=1,
                currency=currency,
                reason="",
            )
        )
    assert pingxx_double.requests == []


def test_upper_case_cny_is_accepted(pingxx, pingxx_double):
    pingxx.start_payment(payment_request(currency="CNY"))
    assert sent(pingxx_double)["currency"] == "cny"


def test_subject_and_body_lose_emoji_and_are_trimmed(pingxx, pingxx_double):
    subject = "🎉 零基础学 Python 从入门到精通的完整实战课程 含项目与练习 🐍"
    body = "本课程" + "循序渐进地讲解编程基础😀" * 20
    request = payment_request(subject=subject, body=body)
    pingxx.start_payment(request)

    sent_body = sent(pingxx_double)
    bmp_subject = subject.replace("🎉", "").replace("🐍", "").strip()
    bmp_body = body.replace("😀", "")
    assert sent_body["subject"] == bmp_subject[:32]
    assert sent_body["body"] == bmp_body[:128]
    assert len(sent_body["subject"]) == 32 and len(sent_body["body"]) == 128
    attempt = pingxx.build_attempt(request)
    assert (attempt.subject, attempt.body) == (sent_body["subject"], sent_body["body"])


def test_an_empty_body_is_replaced_by_the_subject(pingxx, pingxx_double):
    pingxx.start_payment(payment_request(body="🙂"))
    assert sent(pingxx_double)["body"] == "Python 入门"


def test_a_request_signed_with_another_merchant_key_is_refused(
    pingxx_settings, pingxx_keys, pingxx_double
):
    pingxx_settings.PINGXX_PRIVATE_KEY = pem(pingxx_keys.stranger)
    with pytest.raises(ProviderRequestRefused) as caught:
        PingxxProvider().start_payment(payment_request())
    assert caught.value.details["http_status"] == 401
    assert "Signature" in caught.value.details["provider_message"]
    assert len(pingxx_double.requests) == 1
    assert pingxx_double.charges == {}


def test_a_wrong_secret_key_is_refused(pingxx_settings, pingxx_double):
    pingxx_settings.PINGXX_SECRET_KEY = "sk_test_wrong"
    with pytest.raises(ProviderRequestRefused) as caught:
        PingxxProvider().start_payment(payment_request())
    assert caught.value.code == "provider_refused"
    assert caught.value.details["http_status"] == 401


def test_parameters_ping_plus_plus_refuses_keep_its_message_and_code(pingxx):
    with pytest.raises(ProviderRequestRefused) as caught:
        pingxx.start_payment(payment_request(amount=0))
    assert caught.value.details["http_status"] == 400
    assert caught.value.details["provider_code"] == "invalid_request_error"
    assert "amount" in caught.value.details["provider_message"]
    assert caught.value.code == "provider_refused"  # not overwritten by Ping++'s code


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_unavailable_and_not_retried(pingxx, pingxx_double, status):
    pingxx_double.fail_next(status)
    with pytest.raises(ProviderUnavailable) as caught:
        pingxx.start_payment(payment_request())
    assert caught.value.details["http_status"] == status
    assert len(pingxx_double.requests) == 1  # the SDK's blind 502 retry is off
    assert pingxx_double.charges == {}


def test_a_closed_port_is_unavailable(pingxx_settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pingxx_settings.PINGXX_API_BASE = f"http://127.0.0.1:{port}"
    with pytest.raises(ProviderUnavailable) as caught:
        PingxxProvider().start_payment(payment_request())
    assert caught.value.channel == "pingxx"


@pytest.mark.parametrize(
    "status,body",
    [(200, b"<html>hello</html>"), (200, b'{"object": "list"}'), (404, b"<html>no</html>")],
)
def test_unreadable_answers_are_bad_responses(pingxx, pingxx_double, status, body):
    pingxx_double.fail_next(status, body=body)
    with pytest.raises(ProviderBadResponse):
        pingxx.start_payment(payment_request())


def test_fetch_payment_before_and_after_paying(pingxx, pingxx_double):
    request = payment_request()
    charge_id = pingxx.start_payment(request).provider_payment_id

    before = pingxx.fetch_payment(charge_id)
    assert (before.state, before.paid_at, before.transaction_no) == (PAYMENT_PENDING, None, "")

    pingxx_double.pay(charge_id, transaction_no="2025010122001400000000000001")
    after = pingxx.fetch_payment(charge_id)
    assert after.state == PAYMENT_SUCCEEDED
    assert after.provider_payment_id == charge_id
    assert (after.amount, after.currency) == (1990, "cny")
    assert (after.attempt_bid, after.order_bid) == (request.attempt_bid, request.order_bid)
    assert after.app_id == PINGXX_APP_ID and after.livemode is False
    assert after.transaction_no == "2025010122001400000000000001"
    assert after.paid_at.tzinfo == UTC
    assert abs(after.paid_at.timestamp() - time.time()) < 60


def test_fetch_payment_of_failed_and_expired_charges(pingxx, pingxx_double):
    failed = pingxx.start_payment(payment_request()).provider_payment_id
    pingxx_double.update_charge(failed, failure_code="USER_PAY_FAIL", failure_msg="支付失败")
    state = pingxx.fetch_payment(failed)
    assert (state.state, state.failure_code, state.failure_message) == (
        PAYMENT_FAILED,
        "USER_PAY_FAIL",
        "支付失败",
    )
    expired = pingxx.start_payment(payment_request()).provider_payment_id
    pingxx_double.update_charge(expired, time_expire=int(time.time()) - 1)
    assert pingxx.fetch_payment(expired).state == PAYMENT_CLOSED


def test_fetch_payment_of_an_unknown_charge_is_refused(pingxx):
    with pytest.raises(ProviderRequestRefused) as caught:
        pingxx.fetch_payment("ch_unknown")
    assert caught.value.details["http_status"] == 404
