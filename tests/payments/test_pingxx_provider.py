"""The Ping++ provider, through the real pingpp SDK, against the loopback double."""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import UTC

import certifi
import pingpp
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from pingpp import api_requestor, http_client, util

from payments import registry
from payments.models import AttemptStatus, PingxxOrder
from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    EVENT_REFUND,
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    CurrencyNotSupported,
    PaymentMethodInvalid,
    PaymentProvider,
    PaymentRequest,
    ProviderBadResponse,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundRequest,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from payments.providers.pingxx import PingxxProvider
from tests.payments.conftest import PINGXX_APP_ID, PINGXX_SECRET_KEY, pem

EXTRAS = {
    "alipay_qr": {},
    "wx_pub_qr": {"product_id": "prod0123456789abcdef0123456789ab"},
    "alipay_pc_direct": {"success_url": "https://example.com/paid"},
    "wx_pub": {"open_id": "o_wechat_user"},
    "wx_wap": {"result_url": "https://example.com/paid"},
}
QR_PREFIXES = {"alipay_qr": "https://qr.alipay.com/", "wx_pub_qr": "weixin://wxpay/bizpayurl"}


def payment_request(method: str = "alipay_qr", **overrides) -> PaymentRequest:
    values = {
        "channel": "pingxx",
        "method": method,
        "order_bid": "0123456789abcdef0123456789abcdef",
        "attempt_bid": os.urandom(16).hex(),
        "user_bid": "user0123456789abcdef0123456789ab",
        "product_bid": "prod0123456789abcdef0123456789ab",
        "amount": 1990,
        "currency": "cny",
        "subject": "Python 入门",
        "body": "A course",
        "client_ip": "203.0.113.7",
        "success_url": "https://example.com/paid",
        "open_id": "o_wechat_user",
    }
    return PaymentRequest(**{**values, **overrides})


def sent(double, index: int = -1) -> dict:
    return json.loads(double.requests[index]["body"])


def paid_charge(pingxx, double, amount: int = 1990) -> str:
    charge_id = pingxx.start_payment(payment_request(amount=amount)).provider_payment_id
    double.pay(charge_id)
    return charge_id


def refund_request(charge_id: str, refund_bid: str, amount: int = 500) -> RefundRequest:
    return RefundRequest(
        channel="pingxx",
        refund_bid=refund_bid,
        provider_payment_id=charge_id,
        amount=amount,
        currency="cny",
        reason="课程不满意 🙁",
    )


# ---- configuration ----


def test_provider_implements_the_protocol(pingxx):
    assert isinstance(pingxx, PaymentProvider)
    assert pingxx.currencies == frozenset({"cny"})
    assert pingxx.default_method in pingxx.methods


def test_construction_configures_the_sdk(pingxx, pingxx_double):
    assert pingpp.api_base == pingxx_double.base_url
    assert pingpp.api_key == PINGXX_SECRET_KEY
    assert pingpp.app_id == PINGXX_APP_ID
    assert "PRIVATE KEY" in pingpp.private_key
    assert pingpp.ca_bundle == certifi.where()
    assert pingpp.verify_ssl_certs is True
    assert pingpp.connect_timeout == 10
    assert pingpp.timeout == (10, 30)
    assert pingpp.max_network_retries == 0
    # What the SDK builds from them per request: requests, verifying against certifi.
    client = api_requestor.APIRequestor()._client
    assert isinstance(client, http_client.RequestsClient)
    assert util.ca_bundle_path(client._ca_bundle) == os.path.realpath(certifi.where())


def test_the_read_timeout_really_applies(pingxx_settings, pingxx_double, monkeypatch):
    monkeypatch.setattr(PingxxProvider, "read_timeout", 0.3)
    pingxx = PingxxProvider()
    pingxx_double.delay_next(2)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        pingxx.start_payment(payment_request())
    assert time.monotonic() - started < 1.5


def test_registry_rebuilds_the_provider_when_settings_change(pingxx_settings):
    first = registry.get_provider_any("pingxx")
    assert isinstance(first, PingxxProvider)
    assert registry.get_provider_any("pingxx") is first
    pingxx_settings.PINGXX_API_BASE = "http://127.0.0.1:9/"
    assert registry.get_provider_any("pingxx") is not first
    assert pingpp.api_base == "http://127.0.0.1:9"


# ---- charges ----


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


# ---- refunds ----


def test_refund_then_find_it_by_refund_bid(pingxx, pingxx_double):
    charge_id = paid_charge(pingxx, pingxx_double)
    refund = pingxx.refund(refund_request(charge_id, "a" * 32))

    body = sent(pingxx_double)
    assert body == {
        "amount": 500,
        "description": "课程不满意",
        "metadata": {"refund_bid": "a" * 32},
    }
    assert refund.state == REFUND_SUCCEEDED
    assert refund.provider_refund_id.startswith("re_")
    assert (refund.provider_payment_id, refund.amount, refund.currency) == (charge_id, 500, "cny")
    assert refund.refund_bid == "a" * 32

    found = pingxx.find_refund(charge_id, "a" * 32)
    assert found.provider_refund_id == refund.provider_refund_id
    assert pingxx.find_refund(charge_id, "b" * 32) is None
    fetched = pingxx.fetch_refund(charge_id, refund.provider_refund_id)
    assert (fetched.state, fetched.refund_bid) == (REFUND_SUCCEEDED, "a" * 32)


def test_find_refund_reads_every_page(pingxx, pingxx_double, monkeypatch):
    monkeypatch.setattr("payments.providers.pingxx.REFUND_PAGE_SIZE", 2)
    charge_id = paid_charge(pingxx, pingxx_double)
    first = pingxx.refund(refund_request(charge_id, "0" * 32, amount=100))
    for index in range(1, 6):
        pingxx.refund(refund_request(charge_id, str(index) * 32, amount=100))
    pingxx_double.requests.clear()

    assert pingxx.find_refund(charge_id, "0" * 32).provider_refund_id == first.provider_refund_id
    assert len(pingxx_double.requests) == 3
    assert "starting_after=re_" in pingxx_double.requests[1]["path"]
    assert pingxx.find_refund(charge_id, "f" * 32) is None


def test_a_pending_refund_settles(pingxx, pingxx_double):
    charge_id = paid_charge(pingxx, pingxx_double)
    pingxx_double.refund_status = "pending"
    refund = pingxx.refund(refund_request(charge_id, "c" * 32))
    assert refund.state == REFUND_PENDING
    pingxx_double.settle_refund(refund.provider_refund_id, "failed")
    assert pingxx.fetch_refund(charge_id, refund.provider_refund_id).state == REFUND_FAILED


def test_refunding_more_than_remains_is_refused(pingxx, pingxx_double):
    charge_id = paid_charge(pingxx, pingxx_double, amount=1000)
    pingxx.refund(refund_request(charge_id, "d" * 32, amount=600))
    with pytest.raises(ProviderRequestRefused) as caught:
        pingxx.refund(refund_request(charge_id, "e" * 32, amount=600))
    assert caught.value.details["http_status"] == 400
    assert pingxx.find_refund(charge_id, "e" * 32) is None


def test_refund_of_a_server_error_is_unavailable(pingxx, pingxx_double):
    charge_id = paid_charge(pingxx, pingxx_double)
    pingxx_double.fail_next(502)
    with pytest.raises(ProviderUnavailable):
        pingxx.refund(refund_request(charge_id, "f" * 32))
    assert pingxx_double.refunds == {}


# ---- closing payments ----

REVERSIBLE = ["alipay_qr", "wx_pub_qr", "wx_pub", "wx_wap"]


def started_attempt(pingxx, method: str = "alipay_qr") -> PingxxOrder:
    """An attempt row as the services hold it after starting (not saved: close_payment
    must not need the database)."""
    request = payment_request(method)
    attempt = pingxx.build_attempt(request)
    pingxx.apply_start(attempt, pingxx.start_payment(request))
    return attempt


def reverses(double, charge_id: str) -> list[dict]:
    return [r for r in double.requests if r["path"] == f"/v1/charges/{charge_id}/reverse"]


@pytest.mark.parametrize("method", REVERSIBLE)
def test_close_reverses_an_unpaid_charge(pingxx, pingxx_double, method):
    attempt = started_attempt(pingxx, method)

    state = pingxx.close_payment(attempt)

    assert (state.state, state.provider_payment_id) == (PAYMENT_CLOSED, attempt.charge_id)
    assert (state.amount, state.currency, state.attempt_bid) == (1990, "cny", attempt.attempt_bid)
    assert state.raw["reversed"] is True
    assert pingxx_double.charges[attempt.charge_id]["reversed"] is True
    (reverse,) = reverses(pingxx_double, attempt.charge_id)
    assert reverse["method"] == "POST"  # signed: the double checked it
    assert attempt.pk is None and attempt.status == AttemptStatus.PENDING


@pytest.mark.parametrize("method", [*REVERSIBLE, "alipay_pc_direct"])
def test_close_of_a_paid_charge_reports_the_payment(pingxx, pingxx_double, method):
    attempt = started_attempt(pingxx, method)
    pingxx_double.pay(attempt.charge_id, transaction_no="2025010122001400000000000002")

    state = pingxx.close_payment(attempt)

    assert (state.state, state.amount, state.currency) == (PAYMENT_SUCCEEDED, 1990, "cny")
    assert state.transaction_no == "2025010122001400000000000002"
    assert state.paid_at is not None and state.attempt_bid == attempt.attempt_bid
    assert pingxx_double.charges[attempt.charge_id]["reversed"] is False


def test_close_of_a_method_without_reverse_is_pending_until_the_charge_expires(
    pingxx, pingxx_double
):
    attempt = started_attempt(pingxx, "alipay_pc_direct")

    assert pingxx.close_payment(attempt).state == PAYMENT_PENDING
    pingxx_double.update_charge(attempt.charge_id, failure_code="USER_PAY_FAIL")
    assert pingxx.close_payment(attempt).state == PAYMENT_PENDING  # not closed by a failure
    pingxx_double.update_charge(attempt.charge_id, time_expire=int(time.time()) - 1)
    assert pingxx.close_payment(attempt).state == PAYMENT_CLOSED

    assert reverses(pingxx_double, attempt.charge_id) == []
    assert pingxx_double.charges[attempt.charge_id]["reversed"] is False


def test_closing_a_reversed_or_expired_charge_is_closed(pingxx, pingxx_double):
    attempt = started_attempt(pingxx)
    assert pingxx.close_payment(attempt).state == PAYMENT_CLOSED
    assert pingxx.close_payment(attempt).state == PAYMENT_CLOSED  # Ping++ refuses a second

    expired = started_attempt(pingxx, "wx_pub_qr")
    pingxx_double.update_charge(expired.charge_id, time_expire=int(time.time()) - 1)
    assert pingxx.close_payment(expired).state == PAYMENT_CLOSED


def test_a_refused_reverse_of_an_open_charge_leaves_it_pending(pingxx, pingxx_double):
    # e.g. WeChat, which takes no close in the first minutes of a payment
    attempt = started_attempt(pingxx, "wx_pub_qr")
    refusal = {"error": {"type": "channel_error", "code": "channel_error", "message": "too early"}}
    pingxx_double.fail_next(400, body=json.dumps(refusal).encode())
    assert pingxx.close_payment(attempt).state == PAYMENT_PENDING
    assert len(reverses(pingxx_double, attempt.charge_id)) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_close_when_ping_plus_plus_fails_is_unavailable(pingxx, pingxx_double, status):
    attempt = started_attempt(pingxx)
    pingxx_double.fail_next(status)
    with pytest.raises(ProviderUnavailable):
        pingxx.close_payment(attempt)
    assert pingxx_double.charges[attempt.charge_id]["reversed"] is False


def test_close_when_ping_plus_plus_cannot_be_reached_is_unavailable(
    pingxx, pingxx_double, pingxx_settings
):
    attempt = started_attempt(pingxx)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pingxx_settings.PINGXX_API_BASE = f"http://127.0.0.1:{port}"
    with pytest.raises(ProviderUnavailable):
        PingxxProvider().close_payment(attempt)


def test_close_of_an_attempt_without_a_charge_calls_nothing(pingxx, pingxx_double):
    attempt = pingxx.build_attempt(payment_request())
    state = pingxx.close_payment(attempt)
    assert (state.state, state.provider_payment_id) == (PAYMENT_CLOSED, "")
    assert (state.amount, state.currency, state.attempt_bid, state.order_bid) == (
        1990,
        "cny",
        attempt.attempt_bid,
        attempt.order_bid,
    )
    assert pingxx_double.requests == []


# ---- webhooks ----


def signed_headers(signature: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Pingplusplus-Signature": signature}


def test_charge_succeeded_webhook(pingxx, pingxx_double):
    request = payment_request()
    charge_id = pingxx.start_payment(request).provider_payment_id
    pingxx_double.pay(charge_id, transaction_no="4200000000000000")
    event = pingxx_double.charge_succeeded_event(charge_id)
    body, signature = pingxx_double.sign_event(event)
    # Django's request.headers, as the webhook view passes them.
    headers = RequestFactory().post("/", HTTP_X_PINGPLUSPLUS_SIGNATURE=signature).headers

    parsed = pingxx.parse_webhook(body, headers)

    assert (parsed.event_id, parsed.event_type, parsed.kind) == (
        event["id"],
        "charge.succeeded",
        EVENT_PAYMENT,
    )
    assert parsed.livemode is False and parsed.refund is None
    payment = parsed.payment
    assert payment.state == PAYMENT_SUCCEEDED
    assert payment.provider_payment_id == charge_id
    assert (payment.attempt_bid, payment.order_bid) == (request.attempt_bid, request.order_bid)
    assert (payment.amount, payment.currency, payment.app_id) == (1990, "cny", PINGXX_APP_ID)
    assert payment.transaction_no == "4200000000000000"
    assert payment.paid_at.tzinfo == UTC
    assert payment.raw["id"] == charge_id
    assert parsed.raw == event


@pytest.mark.parametrize(
    "status,state", [("succeeded", REFUND_SUCCEEDED), ("failed", REFUND_FAILED)]
)
def test_refund_webhook(pingxx, pingxx_double, status, state):
    charge_id = paid_charge(pingxx, pingxx_double)
    refund = pingxx.refund(refund_request(charge_id, "a" * 32))
    event = pingxx_double.refund_succeeded_event(refund.provider_refund_id)
    failure_code = "REFUND_FAIL" if status == "failed" else None
    event["data"]["object"].update(status=status, failure_code=failure_code)
    body, signature = pingxx_double.sign_event(event)

    parsed = pingxx.parse_webhook(body, {"x-pingplusplus-signature": signature})

    assert parsed.kind == EVENT_REFUND and parsed.payment is None
    assert parsed.refund.state == state
    assert parsed.refund.provider_refund_id == refund.provider_refund_id
    assert parsed.refund.provider_payment_id == charge_id
    assert (parsed.refund.amount, parsed.refund.refund_bid) == (500, "a" * 32)
    assert parsed.refund.failure_code == (failure_code or "")
    assert parsed.livemode is False


def test_unknown_event_types_are_other(pingxx, pingxx_double):
    event = pingxx_double.event("summary.daily.available", {"object": "summary", "id": "s1"})
    body, signature = pingxx_double.sign_event(event)
    parsed = pingxx.parse_webhook(body, signed_headers(signature))
    assert (parsed.kind, parsed.payment, parsed.refund) == (EVENT_OTHER, None, None)
    assert parsed.event_type == "summary.daily.available"


def a_paid_event_body(pingxx, pingxx_double) -> tuple[bytes, str]:
    charge_id = paid_charge(pingxx, pingxx_double)
    return pingxx_double.sign_event(pingxx_double.charge_succeeded_event(charge_id))


def test_webhook_without_signature(pingxx, pingxx_double):
    body, _ = a_paid_event_body(pingxx, pingxx_double)
    with pytest.raises(WebhookSignatureInvalid) as caught:
        pingxx.parse_webhook(body, {"Content-Type": "application/json"})
    assert caught.value.details["signature"] == "missing"
    assert caught.value.http_status == 401


def test_webhook_signed_with_another_key(pingxx, pingxx_double, pingxx_keys):
    charge_id = paid_charge(pingxx, pingxx_double)
    event = pingxx_double.charge_succeeded_event(charge_id)
    body, forged = pingxx_double.sign_event(event, key=pingxx_keys.stranger)
    with pytest.raises(WebhookSignatureInvalid) as caught:
        pingxx.parse_webhook(body, signed_headers(forged))
    assert caught.value.details["signature"] == "mismatch"


def test_webhook_with_the_signature_of_another_body(pingxx, pingxx_double):
    body, signature = a_paid_event_body(pingxx, pingxx_double)
    tampered = body.replace(b'"amount": 1990', b'"amount": 1')
    assert tampered != body
    with pytest.raises(WebhookSignatureInvalid):
        pingxx.parse_webhook(tampered, signed_headers(signature))


def test_webhook_with_a_signature_that_is_not_base64(pingxx, pingxx_double):
    body, _ = a_paid_event_body(pingxx, pingxx_double)
    with pytest.raises(WebhookSignatureInvalid) as caught:
        pingxx.parse_webhook(body, signed_headers("not base64!"))
    assert caught.value.details["signature"] == "malformed"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"id": "evt_1", "type": "charge.succeeded"}',
        b'{"id": "evt_1", "type": "charge.succeeded", "data": {"object": {"id": "ch_1"}}}',
        b'{"type": "charge.succeeded", "data": {"object": {}}}',
    ],
)
def test_validly_signed_bodies_that_are_not_events(pingxx, pingxx_double, body):
    with pytest.raises(WebhookPayloadInvalid):
        pingxx.parse_webhook(body, signed_headers(pingxx_double.sign(body)))


def test_webhook_for_an_unpaid_charge_succeeded_is_invalid(pingxx, pingxx_double):
    charge_id = pingxx.start_payment(payment_request()).provider_payment_id
    body, signature = pingxx_double.sign_event(pingxx_double.charge_succeeded_event(charge_id))
    with pytest.raises(WebhookPayloadInvalid):
        pingxx.parse_webhook(body, signed_headers(signature))


@pytest.mark.parametrize("public_key", ["", "not a pem"])
def test_webhooks_without_a_public_key_are_refused(
    pingxx_settings, pingxx_double, pingxx_keys, public_key
):
    pingxx_settings.PINGXX_WEBHOOK_PUBLIC_KEY = public_key
    body, signature = pingxx_double.sign_event(pingxx_double.event("charge.succeeded", {}))
    with pytest.raises(WebhookNotConfigured) as caught:
        PingxxProvider().parse_webhook(body, signed_headers(signature))
    assert caught.value.http_status == 503


# ---- attempt rows ----


def test_build_attempt(pingxx):
    request = payment_request("wx_pub_qr", subject="🎓 课程", client_ip="198.51.100.1")
    attempt = pingxx.build_attempt(request)

    assert attempt.pk is None
    assert attempt.pingxx_order_bid == attempt.transaction_no == request.attempt_bid
    assert (attempt.order_bid, attempt.user_bid, attempt.product_bid) == (
        request.order_bid,
        request.user_bid,
        request.product_bid,
    )
    assert (attempt.app_id, attempt.channel) == (PINGXX_APP_ID, "wx_pub_qr")
    assert (attempt.amount, attempt.currency, attempt.currency_code) == (1990, "CNY", "cny")
    assert (attempt.subject, attempt.client_ip) == ("课程", "198.51.100.1")
    assert json.loads(attempt.extra) == {"product_id": request.product_bid}
    assert attempt.status == AttemptStatus.PENDING and attempt.charge_id == ""


def test_apply_start_and_client_data(pingxx):
    request = payment_request("wx_pub_qr")
    attempt = pingxx.build_attempt(request)
    start = pingxx.start_payment(request)

    fields = pingxx.apply_start(attempt, start)

    assert set(fields) == {"charge_id", "charge_object", "updated_at"}
    assert attempt.charge_id == attempt.provider_payment_id == start.provider_payment_id
    assert json.loads(attempt.charge_object) == start.raw
    assert pingxx.client_data(attempt) == start.client_data


def test_client_data_of_a_legacy_python_repr_charge(pingxx):
    attempt = PingxxOrder(channel="alipay_qr")
    attempt.charge_object = repr(
        {"id": "ch_1", "credential": {"object": "credential", "alipay_qr": "https://qr/x"}}
    )
    assert pingxx.client_data(attempt)["qr_url"] == "https://qr/x"
    assert pingxx.client_data(PingxxOrder(channel="alipay_qr")) == {"credential": {}, "qr_url": ""}


def test_apply_payment_state(pingxx, pingxx_double):
    request = payment_request()
    attempt = pingxx.build_attempt(request)
    pingxx.apply_start(attempt, pingxx.start_payment(request))
    pingxx_double.pay(attempt.charge_id)
    state = pingxx.fetch_payment(attempt.charge_id)

    fields = pingxx.apply_payment_state(attempt, state)

    assert "status" not in fields and "updated_at" in fields
    assert attempt.status == AttemptStatus.PENDING
    assert attempt.paid_at == state.paid_at
    assert json.loads(attempt.charge_object)["paid"] is True


def test_apply_payment_state_of_a_failure(pingxx, pingxx_double):
    request = payment_request()
    attempt = pingxx.build_attempt(request)
    pingxx.apply_start(attempt, pingxx.start_payment(request))
    pingxx_double.update_charge(attempt.charge_id, failure_code="X" * 300, failure_msg="失败" * 200)

    fields = pingxx.apply_payment_state(attempt, pingxx.fetch_payment(attempt.charge_id))

    assert {"failure_code", "failure_msg", "failed_at"} <= set(fields)
    assert (len(attempt.failure_code), len(attempt.failure_msg)) == (255, 255)
    attempt.status = AttemptStatus.FAILED
    failed_at = attempt.failed_at
    again = pingxx.apply_payment_state(attempt, pingxx.fetch_payment(attempt.charge_id))
    assert "failed_at" not in again and attempt.failed_at == failed_at


@pytest.mark.django_db
def test_attempts_for(pingxx):
    request = payment_request()
    attempt = pingxx.build_attempt(request)
    attempt.charge_id = "ch_saved"
    attempt.save()
    pingxx.build_attempt(payment_request()).save()

    assert list(pingxx.attempts_for(attempt_bid=request.attempt_bid)) == [attempt]
    assert list(pingxx.attempts_for(provider_payment_id="ch_saved")) == [attempt]
    assert list(pingxx.attempts_for(attempt_bid="nope", provider_payment_id="ch_saved")) == [
        attempt
    ]
    assert list(pingxx.attempts_for()) == []


# ---- keys ----


def test_keys_given_as_files(pingxx_settings, pingxx_keys, pingxx_double, tmp_path):
    private, public = tmp_path / "merchant.pem", tmp_path / "pingxx_public.pem"
    private.write_text(pem(pingxx_keys.merchant))
    public.write_text(pem(pingxx_keys.webhook, public=True))
    pingxx_settings.PINGXX_PRIVATE_KEY = ""
    pingxx_settings.PINGXX_PRIVATE_KEY_PATH = str(private)
    pingxx_settings.PINGXX_WEBHOOK_PUBLIC_KEY = ""
    pingxx_settings.PINGXX_WEBHOOK_PUBLIC_KEY_PATH = str(public)
    pingxx = PingxxProvider()

    charge_id = paid_charge(pingxx, pingxx_double)
    body, signature = pingxx_double.sign_event(pingxx_double.charge_succeeded_event(charge_id))
    assert pingxx.parse_webhook(body, signed_headers(signature)).kind == EVENT_PAYMENT


@pytest.mark.parametrize("broken", ["public", "garbage", "missing file"])
def test_an_unusable_private_key_is_a_configuration_error(
    pingxx_settings, pingxx_keys, tmp_path, broken
):
    if broken == "missing file":
        pingxx_settings.PINGXX_PRIVATE_KEY = ""
        pingxx_settings.PINGXX_PRIVATE_KEY_PATH = str(tmp_path / "absent.pem")
    else:
        text = pem(pingxx_keys.merchant, public=True) if broken == "public" else "garbage"
        pingxx_settings.PINGXX_PRIVATE_KEY = text
    with pytest.raises(ImproperlyConfigured) as caught:
        PingxxProvider()
    assert "PINGXX_PRIVATE_KEY" in str(caught.value)
    assert "garbage" not in str(caught.value) and "BEGIN" not in str(caught.value)
