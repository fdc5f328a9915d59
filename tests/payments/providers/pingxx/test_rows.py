"""The PingxxOrder attempt rows."""

from __future__ import annotations

import json

import pytest

from payments.models import AttemptStatus, PingxxOrder
from tests.payments.conftest import PINGXX_APP_ID
from tests.payments.providers.pingxx.helpers import payment_request


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
