"""Every order status transition, allowed or refused, through the one function."""

import itertools

import pytest

from orders import services
from orders.errors import TransitionNotAllowed
from orders.models import OrderEvent, OrderStatus
from tests.factories import OrderFactory, UserFactory

S = OrderStatus
ALLOWED = {
    (S.INIT, S.UNPAID), (S.INIT, S.PAID), (S.INIT, S.TIMEOUT), (S.INIT, S.CANCELLED),
    (S.UNPAID, S.PAID), (S.UNPAID, S.TIMEOUT), (S.UNPAID, S.CANCELLED),
    (S.TIMEOUT, S.PAID), (S.CANCELLED, S.PAID),
    (S.PAID, S.REFUNDED), (S.PAID, S.REVOKED), (S.REVOKED, S.REFUNDED),
}  # fmt: skip
ALL = list(itertools.product(S, S))


def test_the_table_is_the_service_rules():
    table = {(a, b) for a, targets in services.TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), ALL, ids=lambda s: S(s).label)
def test_transition(from_status, to_status):
    actor = UserFactory()
    order = OrderFactory(status=from_status)
    if (from_status, to_status) in ALLOWED:
        services.order_set_status(order=order, to=to_status, source="test", actor=actor)
        order.refresh_from_db()
        assert order.status == to_status
        event = OrderEvent.objects.get(order=order)
        assert (event.from_status, event.to_status) == (from_status, to_status)
        assert event.actor == actor and event.source == "test"
    else:
        with pytest.raises(TransitionNotAllowed) as refused:
            services.order_set_status(order=order, to=to_status, source="test")
        assert refused.value.http_status == 409
        order.refresh_from_db()
        assert order.status == from_status
        assert not OrderEvent.objects.filter(order=order).exists()


@pytest.mark.django_db
def test_a_refunded_order_never_goes_back():
    order = OrderFactory(status=S.REFUNDED)
    for status in S:
        with pytest.raises(TransitionNotAllowed):
            services.order_set_status(order=order, to=status, source="test")


def test_payments_still_only_move_forward():
    assert OrderStatus.PAID not in services.TRANSITIONS[OrderStatus.REFUNDED]
    assert OrderStatus.PAID not in services.TRANSITIONS[OrderStatus.REVOKED]
    # Back from refunded on a provider's word only, to what it was before its refund.
    assert {S.REFUNDED: frozenset({S.PAID, S.REVOKED})} == services.REVERSALS
