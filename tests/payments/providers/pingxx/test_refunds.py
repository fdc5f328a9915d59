"""Refunds: made, found again by their refund bid, settled."""

from __future__ import annotations

import pytest

from payments.providers.base import (
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from tests.payments.providers.pingxx.helpers import paid_charge, refund_request, sent


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
    monkeypatch.setattr("payments.providers.pingxx.api.REFUND_PAGE_SIZE", 2)
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
