"""payments.attempts, the one writer of attempt rows: how a provider's word moves an
attempt's status, and the immutable record each write returns."""

from __future__ import annotations

import dataclasses

import pytest

from payments import attempts, registry
from payments.models import AttemptStatus, SandboxAttempt
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    PaymentState,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox_channel")]

A = AttemptStatus


def attempt_in(status: int, **fields) -> SandboxAttempt:
    return SandboxAttempt.objects.create(
        attempt_bid=f"a{status}{len(fields)}",
        order_bid="o" * 32,
        user_bid="u",
        amount=1990,
        currency="cny",
        status=status,
        payment_id=f"sbx_{status}",
        **fields,
    )


def state(kind: str) -> PaymentState:
    return PaymentState(provider_payment_id="sbx_x", state=kind, amount=1990, currency="cny")


@pytest.mark.parametrize(
    ("before", "reported", "after"),
    [
        (A.PENDING, PAYMENT_SUCCEEDED, A.PAID),
        (A.FAILED, PAYMENT_SUCCEEDED, A.PAID),  # a declined card, then a good one
        (A.CLOSED, PAYMENT_SUCCEEDED, A.PAID),  # money received is never refused
        (A.PAID, PAYMENT_SUCCEEDED, A.PAID),
        (A.REFUNDED, PAYMENT_SUCCEEDED, A.REFUNDED),  # never back from refunded
        (A.PENDING, PAYMENT_FAILED, A.FAILED),
        (A.PAID, PAYMENT_FAILED, A.PAID),
        (A.CLOSED, PAYMENT_FAILED, A.CLOSED),
        (A.PENDING, PAYMENT_CLOSED, A.CLOSED),
        (A.FAILED, PAYMENT_CLOSED, A.CLOSED),
        (A.PAID, PAYMENT_CLOSED, A.PAID),
        (A.PENDING, PAYMENT_PENDING, A.PENDING),
    ],
)
def test_what_the_provider_says_moves_the_status_only_forward(before, reported, after):
    provider = registry.get_provider("sandbox")
    attempt = attempt_in(before)
    change = attempts.attempt_reported(provider, attempt, state(reported))
    assert (change.before, change.after, change.moved) == (before, after, before != after)
    assert SandboxAttempt.objects.get(pk=attempt.pk).status == after
    assert ("status" in change.fields) == (before != after)


def test_each_write_returns_an_immutable_record():
    provider = registry.get_provider("sandbox")
    attempt = attempt_in(A.PAID)
    change = attempts.attempt_refunded(provider, attempt)
    assert (change.channel, change.attempt_bid, change.order_bid) == (
        "sandbox",
        attempt.attempt_bid,
        attempt.order_bid,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.after = A.PAID
    assert attempts.attempt_refunded(provider, attempt) is None  # refunded once
    reversed_ = attempts.attempt_refund_reversed(provider, attempt)
    assert (reversed_.before, reversed_.after) == (A.REFUNDED, A.PAID)


def test_an_attempt_never_started_is_closed_and_one_started_is_not():
    provider = registry.get_provider("sandbox")
    unstarted = attempt_in(A.PENDING)
    SandboxAttempt.objects.filter(pk=unstarted.pk).update(payment_id=None)
    unstarted.refresh_from_db()
    assert attempts.attempt_closed_unstarted(provider, unstarted).after == A.CLOSED
    started = attempt_in(A.PENDING, method="confirm_page")
    assert attempts.attempt_closed_unstarted(provider, started) is None
