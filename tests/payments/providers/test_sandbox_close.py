"""Closing a sandbox payment: its own side closes, and the confirm page no longer takes it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from payments.models import AttemptStatus, SandboxAttempt
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    PaymentRequest,
    ProviderRequestRefused,
)
from payments.providers.sandbox import SandboxProvider
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox_channel")]


@pytest.fixture
def sandbox() -> SandboxProvider:
    return SandboxProvider()


def started_attempt(sandbox: SandboxProvider, *, user_bid: str = "buyer") -> SandboxAttempt:
    """A pending sandbox attempt, saved as the services save it after the start."""
    request = PaymentRequest(
        channel="sandbox",
        method="confirm_page",
        order_bid="order0123456789abcdef0123456789a",
        attempt_bid="attempt0123456789abcdef012345678",
        user_bid=user_bid,
        product_bid="prod0123456789abcdef0123456789ab",
        amount=1990,
        currency="cny",
        subject="Python",
        body="Python",
    )
    attempt = sandbox.build_attempt(request)
    attempt.save()
    attempt.save(update_fields=sandbox.apply_start(attempt, sandbox.start_payment(request)))
    return attempt


def provider_state(attempt: SandboxAttempt) -> str:
    return SandboxAttempt.objects.values_list("provider_state", flat=True).get(pk=attempt.pk)


def test_close_a_pending_payment(sandbox):
    attempt = started_attempt(sandbox)

    state = sandbox.close_payment(attempt)

    assert (state.state, state.provider_payment_id) == (PAYMENT_CLOSED, attempt.payment_id)
    assert (state.amount, state.currency, state.attempt_bid) == (1990, "cny", attempt.attempt_bid)
    assert provider_state(attempt) == PAYMENT_CLOSED
    assert sandbox.fetch_payment(attempt.payment_id).state == PAYMENT_CLOSED
    # Only the sandbox's own side changed: the attempt is the services' to settle.
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.PENDING


def test_a_closed_payment_can_no_longer_be_paid_or_declined(sandbox):
    attempt = started_attempt(sandbox)
    sandbox.close_payment(attempt)

    for succeeded in (True, False):
        with pytest.raises(ProviderRequestRefused):
            sandbox.complete(attempt.attempt_bid, succeeded=succeeded)
    assert provider_state(attempt) == PAYMENT_CLOSED


def test_the_confirm_page_does_not_take_a_closed_payment(sandbox, client):
    user = UserFactory()
    attempt = started_attempt(sandbox, user_bid=str(user.pk))
    sandbox.close_payment(attempt)
    client.force_login(user)

    response = client.post(reverse("sandbox-pay", args=[attempt.attempt_bid]), {"action": "pay"})

    assert response.status_code == 200
    assert b'id="payment-state">closed<' in response.content
    assert b'value="pay"' not in response.content
    assert provider_state(attempt) == PAYMENT_CLOSED


def test_close_of_a_paid_payment_reports_the_payment(sandbox):
    attempt = started_attempt(sandbox)
    sandbox.complete(attempt.attempt_bid, succeeded=True)

    state = sandbox.close_payment(attempt)

    assert (state.state, state.amount, state.currency) == (PAYMENT_SUCCEEDED, 1990, "cny")
    assert state.paid_at is not None
    assert provider_state(attempt) == PAYMENT_SUCCEEDED


def test_close_a_declined_payment_and_close_again(sandbox):
    attempt = started_attempt(sandbox)
    sandbox.complete(attempt.attempt_bid, succeeded=False)

    assert sandbox.close_payment(attempt).state == PAYMENT_CLOSED
    assert sandbox.close_payment(attempt).state == PAYMENT_CLOSED
    assert provider_state(attempt) == PAYMENT_CLOSED


def test_close_of_an_attempt_never_started(sandbox):
    attempt = SandboxAttempt.objects.create(
        order_bid="o1", user_bid="buyer", amount=500, currency="usd"
    )
    state = sandbox.close_payment(attempt)
    assert (state.state, state.provider_payment_id, state.amount, state.currency) == (
        PAYMENT_CLOSED,
        "",
        500,
        "usd",
    )
    assert provider_state(attempt) == PAYMENT_PENDING
