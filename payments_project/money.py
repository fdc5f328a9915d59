"""The one place that converts between major units (Decimal) and minor units (int).

Order prices live in the legacy DECIMAL columns in major units ("19.90" yuan); channel
records and provider calls use integers in minor units (1990 fen). The exponent of each
currency comes from ISO 4217. A value that does not fit its currency (too many decimal
places, a float, a negative amount, an unknown currency) is refused, never rounded.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation

from payments_project.errors import InvalidInput

# ISO 4217 minor-unit exponents of the currencies in circulation (list 1, 2025),
# keyed by the lower-case code that the API and Stripe use.
CURRENCY_EXPONENTS: dict[str, int] = {
    "aed": 2, "afn": 2, "all": 2, "amd": 2, "aoa": 2, "ars": 2, "aud": 2, "awg": 2,
    "azn": 2, "bam": 2, "bbd": 2, "bdt": 2, "bgn": 2, "bhd": 3, "bif": 0, "bmd": 2,
    "bnd": 2, "bob": 2, "brl": 2, "bsd": 2, "btn": 2, "bwp": 2, "byn": 2, "bzd": 2,
    "cad": 2, "cdf": 2, "chf": 2, "clp": 0, "cny": 2, "cop": 2, "crc": 2, "cup": 2,
    "cve": 2, "czk": 2, "djf": 0, "dkk": 2, "dop": 2, "dzd": 2, "egp": 2, "ern": 2,
    "etb": 2, "eur": 2, "fjd": 2, "fkp": 2, "gbp": 2, "gel": 2, "ghs": 2, "gip": 2,
    "gmd": 2, "gnf": 0, "gtq": 2, "gyd": 2, "hkd": 2, "hnl": 2, "htg": 2, "huf": 2,
    "idr": 2, "ils": 2, "inr": 2, "iqd": 3, "irr": 2, "isk": 0, "jmd": 2, "jod": 3,
    "jpy": 0, "kes": 2, "kgs": 2, "khr": 2, "kmf": 0, "kpw": 2, "krw": 0, "kwd": 3,
    "kyd": 2, "kzt": 2, "lak": 2, "lbp": 2, "lkr": 2, "lrd": 2, "lsl": 2, "lyd": 3,
    "mad": 2, "mdl": 2, "mga": 2, "mkd": 2, "mmk": 2, "mnt": 2, "mop": 2, "mru": 2,
    "mur": 2, "mvr": 2, "mwk": 2, "mxn": 2, "myr": 2, "mzn": 2, "nad": 2, "ngn": 2,
    "nio": 2, "nok": 2, "npr": 2, "nzd": 2, "omr": 3, "pab": 2, "pen": 2, "pgk": 2,
    "php": 2, "pkr": 2, "pln": 2, "pyg": 0, "qar": 2, "ron": 2, "rsd": 2, "rub": 2,
    "rwf": 0, "sar": 2, "sbd": 2, "scr": 2, "sdg": 2, "sek": 2, "sgd": 2, "shp": 2,
    "sle": 2, "sos": 2, "srd": 2, "ssp": 2, "stn": 2, "svc": 2, "syp": 2, "szl": 2,
    "thb": 2, "tjs": 2, "tmt": 2, "tnd": 3, "top": 2, "try": 2, "ttd": 2, "twd": 2,
    "tzs": 2, "uah": 2, "ugx": 0, "usd": 2, "uyu": 2, "uzs": 2, "ves": 2, "vnd": 0,
    "vuv": 0, "wst": 2, "xaf": 0, "xcd": 2, "xcg": 2, "xof": 0, "xpf": 0, "yer": 2,
    "zar": 2, "zmw": 2, "zwg": 2,
}  # fmt: skip


class UnsupportedCurrency(InvalidInput):
    code = "unsupported_currency"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


def normalize_currency(currency: str) -> str:
    """The lower-case ISO 4217 code of ``currency``; refuses codes not in the table."""
    if not isinstance(currency, str):
        raise UnsupportedCurrency(f"Currency must be a string, not {type(currency).__name__}.")
    code = currency.strip().lower()
    if code not in CURRENCY_EXPONENTS:
        raise UnsupportedCurrency(f"Unknown currency {currency!r}.", currency=currency)
    return code


def exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (CNY 2, JPY 0, KWD 3)."""
    return CURRENCY_EXPONENTS[normalize_currency(currency)]


def to_minor(amount: Decimal | int, currency: str) -> int:
    """Major units to an integer of minor units: Decimal("19.90") CNY -> 1990.

    Refuses floats, negative or non-finite values, and values with more decimal places
    than the currency has (Decimal("1.5") JPY), instead of rounding them.
    """
    places = exponent(currency)
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise InvalidAmount(
            f"Amount must be a Decimal or an int, not {type(amount).__name__}.",
            amount=repr(amount),
        )
    value = Decimal(amount)
    if not value.is_finite():
        raise InvalidAmount(f"Amount {amount!r} is not a finite number.", amount=str(amount))
    if value < 0:
        raise InvalidAmount(f"Amount {value} is negative.", amount=str(value))
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise InvalidAmount(
            f"Amount {value} has more decimal places than {currency.upper()} allows ({places}).",
            amount=str(value),
            currency=normalize_currency(currency),
        )
    return int(minor)


def to_major(minor: int, currency: str) -> Decimal:
    """Integer minor units to major units, with the currency's places: 1990 CNY -> 19.90."""
    places = exponent(currency)
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise InvalidAmount(
            f"Minor-unit amount must be an int, not {type(minor).__name__}.",
            amount=repr(minor),
        )
    if minor < 0:
        raise InvalidAmount(f"Amount {minor} is negative.", amount=str(minor))
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def parse_major(text: str, currency: str) -> Decimal:
    """A decimal string in major units ("19.90"), checked against the currency."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise InvalidAmount(f"{text!r} is not a decimal amount.", amount=str(text)) from exc
    to_minor(value, currency)
    return value.quantize(Decimal(1).scaleb(-exponent(currency)))


# The legacy price columns' places: what every stored and displayed major amount has.
STORED_PLACES = Decimal("0.01")


def display(amount: Decimal) -> str:
    """A stored major amount as the API and pages show it: "19.90", never "19.9"."""
    return str(Decimal(amount).quantize(STORED_PLACES))


# ---- Money as people read it ----


def _locale(language: str | None) -> Locale:
    """Babel's locale for a Django language code ("zh-hans", "en-us"), or the default."""
    for code in (language, translation.get_language(), settings.LANGUAGE_CODE, "en"):
        if code:
            try:
                return Locale.parse(translation.to_locale(code))
            except (UnknownLocaleError, ValueError):
                continue
    return Locale.parse("en")


def format_money(amount: Decimal | int | None, currency: str, language: str | None = None) -> str:
    """A major-unit amount the way a reader of ``language`` (by default the active
    language) reads it, with the currency's symbol, grouping and number of decimals:
    ``¥4,800`` (JPY), ``$6.99`` (USD), ``¥299.00`` (CNY in Chinese, ``CN¥299.00`` in
    English). Every page, the admin and the API's display fields show money through it.

    Digits the currency does not have are shown, never rounded away (``¥4,800.5`` JPY
    tells that a stored value is wrong). A currency without a symbol shows its code
    (``XYZ12.00``). ``None`` is ``-``.
    """
    if amount is None:
        return "-"
    code = str(currency or "").upper()
    try:
        return format_currency(
            Decimal(amount), code, locale=_locale(language), decimal_quantization=False
        )
    except (ValueError, ArithmeticError):
        return f"{amount} {code}"


def format_minor(amount: int | None, currency: str, language: str | None = None) -> str:
    """A minor-unit amount (a channel record's) shown in major units: 1990 CNY as
    ``CN¥19.90``; one the money module cannot convert is shown with its code."""
    if amount is None:
        return "-"
    try:
        return format_money(to_major(amount, currency), currency, language)
    except InvalidInput:
        return f"{amount} {str(currency).upper()}"
