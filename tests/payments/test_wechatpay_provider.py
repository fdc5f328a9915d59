"""The WeChat Pay provider against the loopback double, through the real wechatpayv3 SDK:
payments, closing, refunds, notifications and the merchant accounts' configuration."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    EVENT_REFUND,
    PAYMENT_CLOSED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    CurrencyNotSupported,
    PaymentMethodInvalid,
    PaymentRequest,
    ProviderBadResponse,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundRequest,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from payments.providers.wechatpay import WechatpayConfig, WechatpayProvider
from payments_project.db import new_bid
from tests.payments.wechatpay_double import WechatpayDouble
from tests.wechatpay import (
    WECHATPAY_API_V3_KEY,
    WECHATPAY_APP_ID,
    WECHATPAY_MCH_ID,
    WECHATPAY_MERCHANT_SERIAL_NO,
    creator_double,
    creator_fields,
    self_signed_certificate,
    wechatpay_cert_pem,
    wechatpay_private_pem,
)

NOTIFY_URL = "https://pay.example.test/webhooks/wechatpay/"


def payment_request(method: str = "wx_pub_qr", **changes) -> PaymentRequest:
    values = {
        "channel": "wechatpay", "method": method, "order_bid": new_bid(),
        "attempt_bid": new_bid(), "user_bid": new_bid(), "product_bid": new_bid(),
        "amount": 9900, "currency": "cny", "subject": "Python 入门课", "body": "课程",
        "client_ip": "203.0.113.7", "open_id": "o-payer-openid",
        "expires_at": datetime.now(UTC) + timedelta(minutes=30),
    }  # fmt: skip
    values.update(changes)
    return PaymentRequest(**values)


def sent(double: WechatpayDouble, index: int = -1) -> dict:
    return json.loads(double.requests[index]["body"])


def started(provider: WechatpayProvider, request: PaymentRequest):
    """An attempt row (unsaved) recording its start, as the services make it."""
    attempt = provider.build_attempt(request)
    provider.apply_start(attempt, provider.start_payment(request))
    return attempt


def refund_request(payment_id: str, amount: int, refund_bid: str = "") -> RefundRequest:
    return RefundRequest(
        channel="wechatpay", refund_bid=refund_bid or new_bid(), provider_payment_id=payment_id,
        amount=amount, currency="cny", reason="学员申请退款",
    )  # fmt: skip


# ---- payments ----


def test_native_payment_gives_the_qr_url_and_sends_the_order(wechatpay, wechatpay_double):
    request = payment_request()

    start = wechatpay.start_payment(request)

    assert start.provider_payment_id == request.attempt_bid
    assert start.state == PAYMENT_PENDING
    assert start.client_data["qr_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert wechatpay_double.requests[-1]["path"] == "/v3/pay/transactions/native"
    body = sent(wechatpay_double)
    assert body["appid"] == WECHATPAY_APP_ID and body["mchid"] == WECHATPAY_MCH_ID
    assert body["out_trade_no"] == request.attempt_bid
    assert body["attach"] == request.order_bid
    assert body["amount"] == {"total": 9900, "currency": "CNY"}
    assert body["notify_url"] == NOTIFY_URL
    assert body["description"] == "Python 入门课"
    assert body["time_expire"].endswith("+08:00")
    assert datetime.fromisoformat(body["time_expire"]) == request.expires_at.replace(microsecond=0)


def test_jsapi_payment_gives_parameters_signed_with_the_merchant_key(
    wechatpay, wechatpay_double, wechatpay_keys
):
    start = wechatpay.start_payment(payment_request("wx_pub"))

    assert sent(wechatpay_double)["payer"] == {"openid": "o-payer-openid"}
    jsapi = start.client_data["jsapi"]
    assert jsapi["appId"] == WECHATPAY_APP_ID and jsapi["signType"] == "RSA"
    assert jsapi["package"] == f"prepay_id={start.raw['prepay_id']}"
    message = "".join(
        f"{jsapi[name]}\n" for name in ("appId", "timeStamp", "nonceStr", "package")
    ).encode()
    wechatpay_keys.merchant.public_key().verify(
        base64.b64decode(jsapi["paySign"]), message, padding.PKCS1v15(), hashes.SHA256()
    )


def test_h5_payment_gives_the_page_to_send_the_browser_to(wechatpay, wechatpay_double):
    start = wechatpay.start_payment(payment_request("wx_wap"))

    assert start.client_data["redirect_url"].startswith("https://wx.tenpay.com/")
    scene = sent(wechatpay_double)["scene_info"]
    assert scene == {"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"method": "wx_pub", "open_id": ""}, PaymentMethodInvalid),
        ({"method": "alipay_qr"}, PaymentMethodInvalid),
        ({"currency": "usd"}, CurrencyNotSupported),
    ],
)
def test_a_request_lacking_what_its_method_needs_is_refused_unsent(
    wechatpay, wechatpay_double, changes, error
):
    with pytest.raises(error):
        wechatpay.start_payment(payment_request(**changes))
    assert wechatpay_double.requests == []


def test_starting_again_is_idempotent_and_answers_a_paid_order_as_succeeded(
    wechatpay, wechatpay_double
):
    request = payment_request()
    first = wechatpay.start_payment(request)
    assert wechatpay.start_payment(request).client_data == first.client_data
    wechatpay_double.pay(request.attempt_bid)

    again = wechatpay.start_payment(request)

    assert again.state == PAYMENT_SUCCEEDED
    assert again.provider_payment_id == request.attempt_bid
    assert len(wechatpay_double.orders) == 1


def test_fetch_payment_follows_the_order(wechatpay, wechatpay_double):
    request = payment_request()
    wechatpay.start_payment(request)
    assert wechatpay.fetch_payment(request.attempt_bid).state == PAYMENT_PENDING

    paid = wechatpay_double.pay(request.attempt_bid, transaction_id="4200000001202612070001")
    state = wechatpay.fetch_payment(request.attempt_bid)

    assert state.state == PAYMENT_SUCCEEDED
    assert (state.amount, state.currency) == (9900, "cny")
    assert state.attempt_bid == state.provider_payment_id == request.attempt_bid
    assert state.order_bid == request.order_bid
    assert state.transaction_no == "4200000001202612070001"
    assert state.app_id == WECHATPAY_APP_ID
    assert state.paid_at == datetime.fromisoformat(paid["success_time"])


def test_fetching_an_unknown_order_is_refused_with_wechat_pays_code(wechatpay):
    with pytest.raises(ProviderRequestRefused) as caught:
        wechatpay.fetch_payment(new_bid())
    assert caught.value.details["provider_code"] == "ORDER_NOT_EXIST"


def test_a_request_signed_with_another_key_is_refused(
    wechatpay_settings, wechatpay_keys, wechatpay_double
):
    forger = WechatpayProvider(
        replace(
            WechatpayConfig.from_settings(),
            private_key=wechatpay_private_pem(wechatpay_keys.stranger),
        )
    )
    with pytest.raises(ProviderRequestRefused) as caught:
        forger.start_payment(payment_request())
    assert caught.value.details["provider_code"] == "SIGN_ERROR"
    assert wechatpay_double.orders == {}


def test_an_answer_signed_by_a_stranger_is_never_accepted(
    wechatpay, wechatpay_double, wechatpay_keys
):
    request = payment_request()
    wechatpay.start_payment(request)
    wechatpay_double.pay(request.attempt_bid)
    wechatpay_double.response_key = wechatpay_keys.stranger

    with pytest.raises(ProviderBadResponse):
        wechatpay.fetch_payment(request.attempt_bid)


def test_an_answer_under_another_certificate_is_refused_and_nothing_downloaded(
    wechatpay, wechatpay_double
):
    wechatpay_double.platform_serial = "1234ABCD"
    with pytest.raises(ProviderBadResponse):
        wechatpay.start_payment(payment_request())
    assert [r["path"] for r in wechatpay_double.requests] == ["/v3/pay/transactions/native"]


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_failing_server_is_unavailable(wechatpay, wechatpay_double, status):
    wechatpay_double.fail_next(status)
    with pytest.raises(ProviderUnavailable):
        wechatpay.start_payment(payment_request())


def test_an_html_error_page_is_unavailable(wechatpay, wechatpay_double):
    wechatpay_double.fail_next(502, body=b"<html>502 Bad Gateway</html>")
    with pytest.raises(ProviderUnavailable):
        wechatpay.fetch_payment(new_bid())


def test_a_timeout_is_unavailable(wechatpay_settings, wechatpay_double, monkeypatch):
    monkeypatch.setattr(WechatpayProvider, "read_timeout", 0.2)
    provider = WechatpayProvider()
    wechatpay_double.delay_next(1.0)
    with pytest.raises(ProviderUnavailable):
        provider.fetch_payment(new_bid())


def test_an_unreachable_server_is_unavailable(wechatpay_settings):
    provider = WechatpayProvider(
        replace(WechatpayConfig.from_settings(), base_url="http://127.0.0.1:9")
    )
    with pytest.raises(ProviderUnavailable):
        provider.fetch_payment(new_bid())


# ---- closing ----


def test_closing_an_unpaid_order_closes_it(wechatpay, wechatpay_double):
    attempt = started(wechatpay, payment_request())

    state = wechatpay.close_payment(attempt)

    assert state.state == PAYMENT_CLOSED
    assert wechatpay_double.orders[attempt.provider_payment_id]["trade_state"] == "CLOSED"
    with pytest.raises(ProviderRequestRefused) as caught:
        wechatpay.start_payment(payment_request(attempt_bid=attempt.provider_payment_id))
    assert caught.value.details["provider_code"] == "ORDER_CLOSED"


def test_closing_a_paid_order_answers_it_succeeded(wechatpay, wechatpay_double):
    attempt = started(wechatpay, payment_request())
    wechatpay_double.pay(attempt.provider_payment_id)

    state = wechatpay.close_payment(attempt)

    assert state.state == PAYMENT_SUCCEEDED
    assert state.amount == 9900 and state.transaction_no


def test_closing_an_attempt_that_never_started_calls_nothing(wechatpay, wechatpay_double):
    attempt = wechatpay.build_attempt(payment_request())

    state = wechatpay.close_payment(attempt)

    assert state.state == PAYMENT_CLOSED and state.amount == 9900
    assert wechatpay_double.requests == []


def test_closing_an_order_wechat_pay_does_not_know_closes_it(wechatpay, wechatpay_double):
    attempt = started(wechatpay, payment_request())
    del wechatpay_double.orders[attempt.provider_payment_id]

    assert wechatpay.close_payment(attempt).state == PAYMENT_CLOSED


def test_closing_when_wechat_pay_fails_raises_for_a_retry(wechatpay, wechatpay_double):
    attempt = started(wechatpay, payment_request())
    wechatpay_double.fail_next(500)
    with pytest.raises(ProviderUnavailable):
        wechatpay.close_payment(attempt)


# ---- refunds ----


def paid_attempt(provider: WechatpayProvider, double: WechatpayDouble, *, save: bool = True):
    attempt = started(provider, payment_request())
    if save:
        attempt.save()
    double.pay(attempt.provider_payment_id)
    return attempt


@pytest.mark.django_db
def test_refunds_in_two_parts_then_one_too_many(wechatpay, wechatpay_double):
    payment_id = paid_attempt(wechatpay, wechatpay_double).provider_payment_id
    first = refund_request(payment_id, 4000)

    refund = wechatpay.refund(first)

    assert refund.state == REFUND_SUCCEEDED
    assert refund.refund_bid == refund.provider_refund_id == first.refund_bid
    assert refund.provider_payment_id == payment_id
    assert (refund.amount, refund.currency) == (4000, "cny")
    assert refund.raw["refund_id"]
    body = sent(wechatpay_double)
    assert body["amount"] == {"refund": 4000, "total": 9900, "currency": "CNY"}
    assert body["notify_url"] == NOTIFY_URL and body["reason"] == "学员申请退款"
    assert wechatpay.refund(refund_request(payment_id, 5900)).state == REFUND_SUCCEEDED
    with pytest.raises(ProviderRequestRefused) as caught:
        wechatpay.refund(refund_request(payment_id, 1))
    assert caught.value.details["provider_code"] == "INVALID_REQUEST"


@pytest.mark.django_db
def test_a_refund_above_what_was_paid_is_refused(wechatpay, wechatpay_double):
    payment_id = paid_attempt(wechatpay, wechatpay_double).provider_payment_id
    with pytest.raises(ProviderRequestRefused):
        wechatpay.refund(refund_request(payment_id, 9901))
    assert wechatpay_double.refunds == {}


@pytest.mark.django_db
def test_a_refund_sent_again_is_the_same_refund(wechatpay, wechatpay_double):
    payment_id = paid_attempt(wechatpay, wechatpay_double).provider_payment_id
    request = refund_request(payment_id, 9900)

    first, again = wechatpay.refund(request), wechatpay.refund(request)

    assert again.raw["refund_id"] == first.raw["refund_id"]
    assert len(wechatpay_double.refunds) == 1


@pytest.mark.django_db
def test_the_total_of_an_order_with_no_row_here_is_asked_of_wechat_pay(wechatpay, wechatpay_double):
    payment_id = paid_attempt(wechatpay, wechatpay_double, save=False).provider_payment_id

    assert wechatpay.refund(refund_request(payment_id, 100)).state == REFUND_SUCCEEDED
    assert sent(wechatpay_double)["amount"]["total"] == 9900
    assert [r["method"] for r in wechatpay_double.requests[-2:]] == ["GET", "POST"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "state"), [("PROCESSING", REFUND_PENDING), ("ABNORMAL", REFUND_FAILED)]
)
def test_refund_states_and_fetching_them_again(wechatpay, wechatpay_double, status, state):
    payment_id = paid_attempt(wechatpay, wechatpay_double).provider_payment_id
    wechatpay_double.refund_status = status

    refund = wechatpay.refund(refund_request(payment_id, 500))

    assert refund.state == state
    wechatpay_double.settle_refund(refund.provider_refund_id)
    fetched = wechatpay.fetch_refund(payment_id, refund.provider_refund_id)
    assert fetched.state == REFUND_SUCCEEDED and fetched.amount == 500


@pytest.mark.django_db
def test_find_refund_by_our_refund_bid(wechatpay, wechatpay_double):
    payment_id = paid_attempt(wechatpay, wechatpay_double).provider_payment_id
    request = refund_request(payment_id, 300)
    assert wechatpay.find_refund(payment_id, request.refund_bid) is None

    wechatpay.refund(request)

    found = wechatpay.find_refund(payment_id, request.refund_bid)
    assert found is not None and found.refund_bid == request.refund_bid
    with pytest.raises(ProviderBadResponse):
        wechatpay.find_refund(new_bid(), request.refund_bid)  # another order's refund


# ---- notifications ----


def test_a_payment_notification(wechatpay, wechatpay_double):
    request = payment_request()
    wechatpay.start_payment(request)
    wechatpay_double.pay(request.attempt_bid, transaction_id="4200000001202612070002")
    body, headers = wechatpay_double.payment_notification(request.attempt_bid)

    event = wechatpay.parse_webhook(body, headers)

    assert event.kind == EVENT_PAYMENT and event.event_type == "TRANSACTION.SUCCESS"
    assert event.event_id == json.loads(body)["id"]
    payment = event.payment
    assert payment.state == PAYMENT_SUCCEEDED
    assert payment.provider_payment_id == payment.attempt_bid == request.attempt_bid
    assert (payment.amount, payment.currency) == (9900, "cny")
    assert payment.order_bid == request.order_bid
    assert payment.transaction_no == "4200000001202612070002"
    assert payment.app_id == WECHATPAY_APP_ID
    assert set(event.raw) == {"id", "event_type", "create_time", "resource"}
    assert "ciphertext" not in json.dumps(event.raw)


@pytest.mark.django_db
def test_a_refund_notification(wechatpay, wechatpay_double):
    payment_id = paid_attempt(wechatpay, wechatpay_double).provider_payment_id
    request = refund_request(payment_id, 700)
    wechatpay.refund(request)
    body, headers = wechatpay_double.refund_notification(request.refund_bid)

    event = wechatpay.parse_webhook(body, headers)

    assert event.kind == EVENT_REFUND and event.event_type == "REFUND.SUCCESS"
    refund = event.refund
    assert refund.state == REFUND_SUCCEEDED
    assert refund.refund_bid == refund.provider_refund_id == request.refund_bid
    assert (refund.provider_payment_id, refund.amount, refund.currency) == (payment_id, 700, "cny")


def test_another_event_type_is_verified_but_other(wechatpay, wechatpay_double):
    body, headers = wechatpay_double.notification("TRANSACTION.CLOSED", {"mchid": WECHATPAY_MCH_ID})
    assert wechatpay.parse_webhook(body, headers).kind == EVENT_OTHER


@pytest.fixture
def notification(wechatpay, wechatpay_double):
    """A paid order's notification maker: options as WechatpayDouble.notification's."""
    request = payment_request()
    wechatpay.start_payment(request)
    wechatpay_double.pay(request.attempt_bid)
    return lambda **options: wechatpay_double.payment_notification(request.attempt_bid, **options)


def test_headers_are_read_whatever_their_form(wechatpay, notification):
    body, headers = notification()
    wsgi = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    lower = {name.lower(): value for name, value in headers.items()}
    assert wechatpay.parse_webhook(body, wsgi).kind == EVENT_PAYMENT
    assert wechatpay.parse_webhook(body, lower).kind == EVENT_PAYMENT


def test_a_forged_signature_is_refused(wechatpay, notification, wechatpay_keys):
    body, headers = notification(key=wechatpay_keys.stranger)
    with pytest.raises(WebhookSignatureInvalid) as caught:
        wechatpay.parse_webhook(body, headers)
    assert caught.value.details["signature"] == "mismatch"


@pytest.mark.parametrize("missing", ["Wechatpay-Signature", "Wechatpay-Timestamp",
                                     "Wechatpay-Nonce", "Wechatpay-Serial"])  # fmt: skip
def test_missing_headers_are_refused(wechatpay, notification, missing):
    body, headers = notification()
    del headers[missing]
    with pytest.raises(WebhookSignatureInvalid) as caught:
        wechatpay.parse_webhook(body, headers)
    assert caught.value.details["signature"] == "missing"


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_more_than_five_minutes_off_is_refused(wechatpay, notification, offset):
    body, headers = notification(timestamp=int(time.time()) + offset)
    with pytest.raises(WebhookSignatureInvalid) as caught:
        wechatpay.parse_webhook(body, headers)
    assert caught.value.details["signature"] == "stale"


def test_a_tampered_body_is_refused(wechatpay, notification):
    body, headers = notification()
    tampered = json.loads(body)
    tampered["event_type"] = "REFUND.SUCCESS"
    with pytest.raises(WebhookSignatureInvalid):
        wechatpay.parse_webhook(json.dumps(tampered).encode(), headers)


def test_another_certificates_serial_is_refused(wechatpay, notification):
    body, headers = notification()
    headers["Wechatpay-Serial"] = "1234ABCD"
    with pytest.raises(WebhookSignatureInvalid) as caught:
        wechatpay.parse_webhook(body, headers)
    assert caught.value.details["signature"] == "unknown_serial"


def test_a_resource_encrypted_with_another_api_v3_key_is_refused(wechatpay, notification):
    body, headers = notification(api_v3_key="b" * 32)
    with pytest.raises(WebhookPayloadInvalid) as caught:
        wechatpay.parse_webhook(body, headers)
    assert caught.value.code == "webhook_undecryptable"
    assert caught.value.details["signature"] == "valid"


def test_a_notification_of_another_merchant_is_refused(wechatpay, wechatpay_double):
    request = payment_request()
    wechatpay.start_payment(request)
    resource = {**wechatpay_double.pay(request.attempt_bid), "mchid": "1900000001"}
    body, headers = wechatpay_double.notification("TRANSACTION.SUCCESS", resource)

    with pytest.raises(WebhookPayloadInvalid) as caught:
        wechatpay.parse_webhook(body, headers)
    assert caught.value.code == "webhook_merchant_mismatch"
    assert caught.value.details["signature"] == "valid"


def test_an_unpaid_transaction_success_is_refused(wechatpay, wechatpay_double):
    request = payment_request()
    wechatpay.start_payment(request)
    resource = wechatpay_double.transaction(request.attempt_bid)
    body, headers = wechatpay_double.notification("TRANSACTION.SUCCESS", resource)
    with pytest.raises(WebhookPayloadInvalid):
        wechatpay.parse_webhook(body, headers)


def test_a_stored_event_reads_back_the_same(wechatpay, notification):
    event = wechatpay.parse_webhook(*notification())

    again = wechatpay.event_from_payload(json.loads(json.dumps(event.raw)))

    assert again == event
    for broken in ({}, {**event.raw, "resource": "x"}, {**event.raw, "id": ""}):
        with pytest.raises(WebhookPayloadInvalid):
            wechatpay.event_from_payload(broken)


# ---- configuration and merchant accounts ----


def test_an_unconfigured_provider_builds_and_refuses_everything(settings, wechatpay_double):
    for name in ("APP_ID", "MCH_ID", "MERCHANT_SERIAL_NO", "PRIVATE_KEY", "PRIVATE_KEY_PATH",
                 "API_V3_KEY", "PLATFORM_CERT", "PLATFORM_CERT_PATH"):  # fmt: skip
        setattr(settings, f"WECHATPAY_{name}", "")
    settings.WECHATPAY_BASE_URL = wechatpay_double.base_url

    provider = WechatpayProvider()

    with pytest.raises(ProviderRequestRefused, match="WeChat Pay is not configured"):
        provider.start_payment(payment_request())
    with pytest.raises(ProviderRequestRefused, match="not configured"):
        provider.fetch_payment(new_bid())
    with pytest.raises(WebhookNotConfigured):
        provider.parse_webhook(b"{}", {})
    assert wechatpay_double.requests == []


def test_a_key_file_that_cannot_be_read_is_a_problem_not_a_crash(wechatpay_settings, tmp_path):
    wechatpay_settings.WECHATPAY_PRIVATE_KEY = ""
    wechatpay_settings.WECHATPAY_PRIVATE_KEY_PATH = str(tmp_path / "absent.pem")

    provider = WechatpayProvider()

    with pytest.raises(ProviderRequestRefused, match="WECHATPAY_PRIVATE_KEY_PATH"):
        provider.start_payment(payment_request())


def test_a_creators_merchant_account_pays_and_is_notified_at_its_own_url(
    wechatpay_settings, wechatpay_keys
):
    public, secret = creator_fields(wechatpay_keys)
    with creator_double(wechatpay_keys, public, secret) as double:
        public["base_url"] = double.base_url
        provider = WechatpayProvider.for_merchant(
            integration_bid="ib0123", public=public, secret=secret
        )
        request = payment_request()
        provider.start_payment(request)
        double.pay(request.attempt_bid)
        event = provider.parse_webhook(*double.payment_notification(request.attempt_bid))

    assert provider.notify_url == f"{NOTIFY_URL}ib0123/"
    assert json.loads(double.requests[0]["body"])["notify_url"] == f"{NOTIFY_URL}ib0123/"
    assert provider.app_id == public["app_id"]
    assert event.payment.app_id == public["app_id"] and event.payment.amount == 9900
    assert WechatpayProvider.merchant_problems(public, secret) == []


def test_a_creators_blank_base_url_is_the_platforms(wechatpay_settings, wechatpay_keys):
    public, secret = creator_fields(wechatpay_keys)
    provider = WechatpayProvider.for_merchant(integration_bid="ib1", public=public, secret=secret)
    assert provider.config.base_url == wechatpay_settings.WECHATPAY_BASE_URL
    assert WechatpayProvider.merchant_problems(public, secret) == []


def test_merchant_problems_name_what_is_wrong(wechatpay_settings, wechatpay_keys):
    public, secret = creator_fields(wechatpay_keys, mch_id="19000x")
    expired = self_signed_certificate(
        wechatpay_keys.platform, days=10, start=datetime.now(UTC) - timedelta(days=30)
    )
    secret.update(api_v3_key="short", private_key="-----BEGIN PRIVATE KEY-----\nnope\n",
                  platform_cert=wechatpay_cert_pem(expired))  # fmt: skip

    problems = " ".join(WechatpayProvider.merchant_problems(public, secret))

    assert "api_v3_key must be exactly 32 bytes" in problems
    assert "private_key:" in problems
    assert "mch_id must be digits" in problems
    assert "platform_cert expired" in problems
    missing = WechatpayProvider.merchant_problems({**public, "app_id": ""}, {})
    assert {"app_id is required.", "private_key is required."} <= set(missing)


def test_the_settings_account_is_read_from_the_settings(wechatpay_settings):
    config = WechatpayConfig.from_settings()
    assert (config.mch_id, config.merchant_serial_no) == (
        WECHATPAY_MCH_ID, WECHATPAY_MERCHANT_SERIAL_NO)  # fmt: skip
    assert config.api_v3_key == WECHATPAY_API_V3_KEY and config.notify_url == NOTIFY_URL
    assert config.problems() == []
    assert "PRIVATE KEY" not in repr(config)  # keys are not shown
