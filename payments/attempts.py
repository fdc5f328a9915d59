"""The one writer of attempt rows (``order_pingxx_orders``, ``order_stripe_orders``,
``payment_sandbox_attempts``): what a provider said is recorded here, each write
returning an immutable ``AttemptChange``.

The provider maps its answers onto the row (``apply_start``, ``apply_payment_state``);
this module saves them, and decides how an attempt's status may move: a payment the
provider confirms is paid whatever we thought, and a paid or refunded attempt is never
made pending, failed or closed again. The caller holds the order's lock (the services'
rule: order first, then attempt); nothing here reads or changes an order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payments.models import AttemptStatus
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    PaymentRequest,
    PaymentStart,
    PaymentState,
)

SETTLED = (AttemptStatus.PAID, AttemptStatus.REFUNDED)


@dataclass(frozen=True)
class AttemptChange:
    """One write of an attempt row: its status before and after, and the fields saved."""

    channel: str
    attempt_bid: str
    order_bid: str
    before: int | None  # None: the row was created
    after: int
    fields: tuple[str, ...]

    @property
    def moved(self) -> bool:
        """Whether the status changed."""
        return self.before != self.after

    @property
    def after_label(self) -> str:
        return AttemptStatus(self.after).label


def _saved(provider, attempt, before: int | None, fields) -> AttemptChange:
    fields = tuple(dict.fromkeys(fields))
    if before is None:
        attempt.save()
    elif fields:
        attempt.save(update_fields=fields)
    return AttemptChange(
        channel=provider.channel,
        attempt_bid=attempt.attempt_bid,
        order_bid=attempt.order_bid,
        before=before,
        after=attempt.status,
        fields=fields,
    )


def attempt_locked(provider, *, attempt_bid: str = "", pk: int | None = None) -> Any:
    """The attempt row, locked for the caller's transaction."""
    if pk is not None:
        return provider.attempt_model.objects.select_for_update().get(pk=pk)
    return provider.attempts_for(attempt_bid=attempt_bid).select_for_update().get()


def attempt_create(provider, request: PaymentRequest) -> tuple[Any, AttemptChange]:
    """A new pending attempt for ``request``, saved."""
    attempt = provider.build_attempt(request)
    return attempt, _saved(provider, attempt, None, ())


def attempt_started(
    provider, attempt, start: PaymentStart, *, reopen: bool = False
) -> AttemptChange:
    """What creating the payment at the provider gave. ``reopen`` makes a closed
    attempt pending again: it exists at the provider after all, so it must be closed
    there (reconciliation does, for an order that is no longer payable)."""
    before = attempt.status
    fields = list(provider.apply_start(attempt, start))
    if reopen and attempt.status == AttemptStatus.CLOSED:
        attempt.status = AttemptStatus.PENDING
        fields.append("status")
    return _saved(provider, attempt, before, fields)


def attempt_reported(provider, attempt, state: PaymentState) -> AttemptChange:
    """What the provider says of the payment: its view recorded, and the status moved
    where the provider's word allows (succeeded: paid, unless already paid or refunded;
    failed: only from pending; closed: from pending or failed)."""
    before = attempt.status
    fields = list(provider.apply_payment_state(attempt, state))
    if state.state == PAYMENT_SUCCEEDED:
        new = before if before in SETTLED else AttemptStatus.PAID
    elif state.state == PAYMENT_FAILED and before == AttemptStatus.PENDING:
        new = AttemptStatus.FAILED
    elif state.state == PAYMENT_CLOSED and before in (AttemptStatus.PENDING, AttemptStatus.FAILED):
        new = AttemptStatus.CLOSED
    else:
        new = before
    if new != before:
        attempt.status = new
        fields.append("status")
    return _saved(provider, attempt, before, fields)


def attempt_start_failed(provider, attempt, state: PaymentState) -> AttemptChange:
    """Creating the payment failed: nothing can be paid on this attempt."""
    before = attempt.status
    fields = [*provider.apply_payment_state(attempt, state), "status"]
    attempt.status = AttemptStatus.FAILED
    return _saved(provider, attempt, before, fields)


def attempt_closed_unstarted(provider, attempt) -> AttemptChange | None:
    """A pending attempt whose provider answer was never recorded (no payment id):
    closed, since the client never got what it needs to pay. None if it has an id or
    is no longer pending."""
    if attempt.provider_payment_id:
        return None
    return _moved(provider, attempt, AttemptStatus.PENDING, AttemptStatus.CLOSED)


def attempt_refunded(provider, attempt) -> AttemptChange | None:
    """The attempt's payment is refunded in full (or a duplicate payment is given back)."""
    return _moved(provider, attempt, AttemptStatus.PAID, AttemptStatus.REFUNDED)


def attempt_refund_reversed(provider, attempt) -> AttemptChange | None:
    """A refund of the attempt failed after it succeeded: the money is back, paid again."""
    return _moved(provider, attempt, AttemptStatus.REFUNDED, AttemptStatus.PAID)


def _moved(provider, attempt, source: int, target: int) -> AttemptChange | None:
    """The attempt moved from ``source`` to ``target``; None (nothing saved) when there
    is no attempt or it is not in ``source``."""
    if attempt is None or attempt.status != source:
        return None
    attempt.status = target
    return _saved(provider, attempt, source, ["status", "updated_at"])
