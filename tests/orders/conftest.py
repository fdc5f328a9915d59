"""The Ping++ fixtures of tests/payments, and the Stripe double with its keys, for the
shop's and the old frontend's tests of both paths."""

import pytest
import stripe

from tests.payments.conftest import pingxx_double, pingxx_keys, pingxx_settings  # noqa: F401
from tests.payments.stripe_fakes import FakeStripe

STRIPE_SECRET_KEY = "sk_test_" + "FakeStripeSecretKey0000000000"
STRIPE_PUBLISHABLE_KEY = "pk_test_" + "FakeStripePublishableKey0000"


@pytest.fixture
def fake_stripe(monkeypatch):
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0)
    with FakeStripe(secret_key=STRIPE_SECRET_KEY) as fake:
        yield fake


from tests.orders.accounts import (  # noqa: E402, F401  (fixtures)
    creator_keys,
    mine,
    sealing_key,
    theirs,
)
