"""Closing payments: reversing charges where Ping++ allows it."""

from __future__ import annotations

import json
import socket
import time

import pytest

from payments.models import AttemptStatus, PingxxOrder
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    ProviderUnavailable,
)
from payments.providers.pingxx import PingxxProvider
from tests.payments.providers.pingxx.helpers import payment_request

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
