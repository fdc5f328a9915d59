"""The payload readers every provider package shares."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from payments.providers.base import PROVIDER_ATTRIBUTES, PaymentProvider
from payments.providers.payloads import (
    Malformed,
    currency,
    envelope,
    header,
    identifier,
    integer,
    livemode,
    metadata,
    plain,
    text,
    timestamp,
)


class Wrapped:
    """An SDK object that is not a Mapping (as Stripe's are)."""

    def __init__(self, data: dict) -> None:
        self.data = data


def test_plain_makes_json_of_mappings_tuples_and_unwrapped_objects():
    value = {1: ("a", Wrapped({"b": Wrapped([2])})), "c": None}
    unwrap = lambda item: item.data if isinstance(item, Wrapped) else item  # noqa: E731
    assert plain(value, unwrap) == {"1": ["a", {"b": [2]}], "c": None}
    assert plain({"k": ("v",)}) == {"k": ["v"]}


def test_readers_of_typed_values():
    obj = {"object": "charge", "id": "ch_1", "amount": 5, "paid": True, "currency": "CNY"}
    assert (text(obj, "id"), text(obj, "amount"), text(obj, "missing")) == ("ch_1", "", "")
    assert integer(obj, "amount") == 5
    with pytest.raises(Malformed, match="charge has no integer 'paid'"):
        integer(obj, "paid")
    assert currency(obj) == "cny"
    with pytest.raises(Malformed, match="refund has no currency"):
        currency({"object": "refund"})
    assert identifier(obj, "charge") == "ch_1"
    with pytest.raises(Malformed, match="expected a refund object"):
        identifier(obj, "refund")
    with pytest.raises(Malformed, match="charge has no id"):
        identifier({"object": "charge", "id": ""}, "charge")
    assert metadata({"metadata": "x"}) == {} and metadata({"metadata": {"a": 1}}) == {"a": 1}
    assert (livemode({"livemode": False}), livemode({"livemode": "no"})) == (False, None)


def test_timestamps():
    assert timestamp({"t": 1_700_000_000}, "t") == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert timestamp({"t": 0}, "t") is None
    assert timestamp({"t": True}, "t") is None
    assert timestamp(None, "t") is None


def test_envelope():
    event = {"id": "evt_1", "type": "charge.succeeded", "data": {"object": {"id": "ch_1"}}}
    assert envelope(event) == ("evt_1", "charge.succeeded", {"id": "ch_1"})
    for broken, message in [
        ([], "not an object"),
        ({**event, "id": ""}, "no id or type"),
        ({**event, "type": None}, "no id or type"),
        ({**event, "data": {"object": "ch_1"}}, "no data.object"),
    ]:
        with pytest.raises(Malformed, match=message):
            envelope(broken)


@pytest.mark.parametrize(
    "name", ["x-signature", "X-Signature", "HTTP_X_SIGNATURE", "X_Signature", "http-x-signature"]
)
def test_a_header_in_any_spelling(name):
    assert header({"Content-Type": "a", name: "sig"}, "X-Signature") == "sig"


def test_an_absent_header_is_empty():
    assert header({"X-Other": "sig", "X-Signature": None}, "x-signature") == ""
    assert header({}, "x-signature") == ""


def test_the_protocol_names_event_from_payload():
    assert "event_from_payload" in PROVIDER_ATTRIBUTES
    assert hasattr(PaymentProvider, "event_from_payload")
