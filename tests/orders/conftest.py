"""The Ping++ fixtures of tests/payments, for the shop's tests of the Ping++ path."""

from tests.payments.conftest import pingxx_double, pingxx_keys, pingxx_settings  # noqa: F401
