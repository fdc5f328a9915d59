"""Refunds: made once, fetched, and found again by their metadata."""

from __future__ import annotations

import pytest

from payments.providers.base import (
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    ProviderBadResponse,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from payments.providers.stripe import api as stripe_api
from tests.payments.providers.stripe.helpers import paid_intent, payment_request, refund_request
from tests.payments.stripe_fakes import StripeFakeError


def test_refund_sends_idempotency_key_and_metadata(provider, fake):
    intent_id = paid_intent(provider, fake)
    request = refund_request(intent_id, amount=500)
    state = provider.refund(request)

    (sent,) = fake.posts("/v1/refunds")
    assert sent["params"] == {
        "payment_intent": intent_id,
        "amount": "500",
        "metadata": {"refund_bid": request.refund_bid, "reason": request.reason},
    }
    assert sent["idempotency_key"] == f"refund-{request.refund_bid}"
    assert state.provider_refund_id.startswith("re_")
    assert (state.state, state.amount, state.currency) == (REFUND_SUCCEEDED, 500, "usd")
    assert (state.provider_payment_id, state.refund_bid) == (intent_id, request.refund_bid)


def test_a_retried_refund_is_made_once(provider, fake):
    intent_id = paid_intent(provider, fake)
    request = refund_request(intent_id)
    fake.fail_next(503)
    first = provider.refund(request)
    again = provider.refund(request)  # the services' retry after an unclear answer
    assert again.provider_refund_id == first.provider_refund_id
    keys = [sent["idempotency_key"] for sent in fake.posts("/v1/refunds")]
    assert keys == [f"refund-{request.refund_bid}"] * 3
    assert len(fake.refunds) == 1


def test_refund_of_a_checkout_session_refunds_its_payment_intent(provider, fake):
    session_id = provider.start_payment(payment_request("checkout_session")).provider_payment_id
    fake.complete_session(session_id)
    state = provider.refund(refund_request(session_id))
    intent_id = fake.sessions[session_id]["payment_intent"]
    assert state.provider_payment_id == intent_id
    assert fake.posts("/v1/refunds")[0]["params"]["payment_intent"] == intent_id


def test_refund_of_an_unpaid_checkout_session_is_refused(provider, fake):
    session_id = provider.start_payment(payment_request("checkout_session")).provider_payment_id
    assert provider.find_refund(session_id, "bid-1") is None  # it took no money
    with pytest.raises(ProviderRequestRefused):
        provider.refund(refund_request(session_id, "bid-1"))
    assert fake.posts("/v1/refunds") == []
    assert [r for r in fake.requests if r["path"] == "/v1/refunds"] == []


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("pending", REFUND_PENDING),
        ("requires_action", REFUND_PENDING),
        ("succeeded", REFUND_SUCCEEDED),
        ("failed", REFUND_FAILED),
        ("canceled", REFUND_FAILED),
    ],
)
def test_refund_statuses(provider, fake, status, state):
    intent_id = paid_intent(provider, fake)
    fake.refund_status = status
    refund = provider.refund(refund_request(intent_id))
    assert refund.state == state
    assert bool(refund.failure_code) is (state == REFUND_FAILED)


def test_refunding_more_than_remains_is_refused(provider, fake):
    intent_id = paid_intent(provider, fake)
    with pytest.raises(ProviderRequestRefused) as caught:
        provider.refund(refund_request(intent_id, amount=5000))
    assert caught.value.details["provider_code"] == "amount_too_large"


def test_fetch_refund(provider, fake):
    intent_id = paid_intent(provider, fake)
    fake.refund_status = "pending"
    made = provider.refund(refund_request(intent_id))
    fake.refunds[made.provider_refund_id]["status"] = "succeeded"
    state = provider.fetch_refund(intent_id, made.provider_refund_id)
    assert (state.provider_refund_id, state.state) == (made.provider_refund_id, REFUND_SUCCEEDED)
    with pytest.raises(ProviderBadResponse):
        provider.fetch_refund("pi_3SomeOtherIntent", made.provider_refund_id)


def test_find_refund_by_its_metadata_on_every_page(provider, fake, monkeypatch):
    monkeypatch.setattr(stripe_api, "REFUND_PAGE_SIZE", 2)
    intent_id = paid_intent(provider, fake)
    other_intent = paid_intent(provider, fake)
    made = [provider.refund(refund_request(intent_id, f"bid{n}", amount=100)) for n in range(5)]
    provider.refund(refund_request(other_intent, "elsewhere", amount=100))
    for n, refund in enumerate(made):  # listed newest first: bid0 is on the third page
        fake.refunds[refund.provider_refund_id]["created"] = 1_780_000_000 + n

    found = provider.find_refund(intent_id, "bid0")
    assert found is not None and found.provider_refund_id == made[0].provider_refund_id
    assert found.refund_bid == "bid0" and found.state == REFUND_SUCCEEDED
    lists = [r for r in fake.requests if r["method"] == "GET" and r["path"] == "/v1/refunds"]
    assert len(lists) == 3
    assert all(r["params"]["payment_intent"] == intent_id for r in lists)
    assert all(r["params"]["limit"] == "2" for r in lists)
    assert lists[1]["params"]["starting_after"] == made[3].provider_refund_id

    assert provider.find_refund(intent_id, "elsewhere") is None
    assert provider.find_refund(intent_id, "never-made") is None
    assert len(provider.refunds_of(intent_id)) == 5


def test_find_refund_prefers_a_live_refund_over_a_failed_one(provider, fake):
    intent_id = paid_intent(provider, fake)
    fake.refund_status = "failed"
    failed = provider.refund(refund_request(intent_id, "bid-1", amount=100))
    assert provider.find_refund(intent_id, "bid-1").state == REFUND_FAILED
    live = {**fake.refunds[failed.provider_refund_id], "id": "re_3Live", "status": "succeeded"}
    live["created"] -= 100  # older, so listed after the failed one
    fake.refunds["re_3Live"] = live
    found = provider.find_refund(intent_id, "bid-1")
    assert (found.provider_refund_id, found.state) == ("re_3Live", REFUND_SUCCEEDED)


def test_find_refund_raises_when_the_list_cannot_be_read(provider, fake, monkeypatch):
    monkeypatch.setattr(stripe_api, "REFUND_PAGE_SIZE", 1)
    intent_id = paid_intent(provider, fake)
    for bid in ("a", "b"):
        provider.refund(refund_request(intent_id, bid, amount=100))
    fake.fail_next(500, times=3)
    with pytest.raises(ProviderUnavailable):
        provider.find_refund(intent_id, "a")
    # The first page reads, the second does not: still an error, never None.
    original = fake._list_refunds

    def second_page_fails(params):
        if params.get("starting_after"):
            raise StripeFakeError(500, "Something went wrong.", kind="api_error")
        return original(params)

    monkeypatch.setattr(fake, "_list_refunds", second_page_fails)
    fake.requests.clear()
    with pytest.raises(ProviderUnavailable):
        provider.find_refund(intent_id, "no-such-bid")
    assert [bool(r["params"].get("starting_after")) for r in fake.requests] == [
        False,
        True,
        True,
        True,
    ]
