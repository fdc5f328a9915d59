from decimal import Decimal

import pytest

from payments_project.money import (
    CURRENCY_EXPONENTS,
    InvalidAmount,
    UnsupportedCurrency,
    exponent,
    normalize_currency,
    parse_major,
    to_major,
    to_minor,
)

# Known exponents from ISO 4217, checked by hand against the table.
KNOWN = {"cny": 2, "usd": 2, "eur": 2, "jpy": 0, "krw": 0, "vnd": 0, "kwd": 3, "bhd": 3}


@pytest.mark.parametrize("currency,places", sorted(KNOWN.items()))
def test_known_exponents(currency, places):
    assert exponent(currency) == places
    assert exponent(currency.upper()) == places


@pytest.mark.parametrize("currency", sorted(CURRENCY_EXPONENTS))
def test_round_trip_for_every_currency(currency):
    places = CURRENCY_EXPONENTS[currency]
    assert places in (0, 2, 3)
    smallest = Decimal(1).scaleb(-places)  # one minor unit: 0.01, 1 or 0.001
    assert to_minor(smallest, currency) == 1
    amount = Decimal("1234") + smallest * 5
    minor = to_minor(amount, currency)
    assert minor == 1234 * 10**places + 5
    assert to_major(minor, currency) == amount
    assert str(to_major(minor, currency)).count(".") == (1 if places else 0)


@pytest.mark.parametrize("currency", sorted(CURRENCY_EXPONENTS))
def test_refuses_a_fraction_of_the_minor_unit_in_every_currency(currency):
    too_fine = Decimal(1).scaleb(-(CURRENCY_EXPONENTS[currency] + 1))
    with pytest.raises(InvalidAmount) as caught:
        to_minor(Decimal(1) + too_fine, currency)
    assert caught.value.code == "invalid_amount"


def test_examples():
    assert to_minor(Decimal("19.90"), "cny") == 1990
    assert to_minor(Decimal("500"), "JPY") == 500
    assert to_minor(Decimal("1.234"), "kwd") == 1234
    assert to_minor(7, "usd") == 700
    assert to_major(1990, "cny") == Decimal("19.90")
    assert to_major(500, "jpy") == Decimal("500")
    assert to_major(1234, "kwd") == Decimal("1.234")
    assert to_minor(Decimal("19.9000"), "cny") == 1990  # trailing zeros are exact


@pytest.mark.parametrize(
    "amount,currency",
    [
        (Decimal("1.5"), "jpy"),
        (Decimal("19.999"), "cny"),
        (Decimal("0.0001"), "kwd"),
        (Decimal("-1.00"), "usd"),
        (Decimal("NaN"), "usd"),
        (Decimal("Infinity"), "usd"),
        (19.9, "cny"),
        ("19.90", "cny"),
        (True, "usd"),
        (None, "usd"),
    ],
)
def test_to_minor_refuses(amount, currency):
    with pytest.raises(InvalidAmount):
        to_minor(amount, currency)


@pytest.mark.parametrize("minor", [19.9, -1, "1990", True, Decimal("1990")])
def test_to_major_refuses(minor):
    with pytest.raises(InvalidAmount):
        to_major(minor, "cny")


@pytest.mark.parametrize("currency", ["xxx", "", "rmb", "usdx", None, 840])
def test_unknown_currency_is_refused(currency):
    with pytest.raises(UnsupportedCurrency) as caught:
        to_minor(Decimal("1.00"), currency)
    assert caught.value.code == "unsupported_currency"
    assert caught.value.http_status == 400


def test_normalize_currency():
    assert normalize_currency(" CNY ") == "cny"


def test_parse_major():
    assert parse_major("19.9", "cny") == Decimal("19.90")
    assert parse_major("500", "jpy") == Decimal("500")
    with pytest.raises(InvalidAmount):
        parse_major("19.901", "cny")
    with pytest.raises(InvalidAmount):
        parse_major("nineteen", "cny")
