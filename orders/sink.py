"""The payment event sink of this service: what providers report, applied to orders.

``settings.PAYMENT_EVENT_SINK`` names it; ``payments`` calls it and never imports it.
"""

from __future__ import annotations

from typing import Any

from orders.models import Order, OrderEventKind
from orders.services import lifecycle, payment_results, refund_results
from payments.providers.base import PaymentState, RefundState
from payments.sink import Reported


class OrderPaymentSink:
    def payment_reported(
        self, *, channel: str, state: PaymentState, source: str, integration_bid: str | None = None
    ) -> Reported:
        order = payment_results.payment_apply(
            channel=channel, state=state, source=source, integration_bid=integration_bid
        )
        return Reported(order.order_bid, f"payment {state.state}; order {order.status_name}")

    def refund_reported(
        self, *, channel: str, state: RefundState, source: str, integration_bid: str | None = None
    ) -> Reported | None:
        refund = refund_results.refund_apply(
            channel=channel, state=state, source=source, integration_bid=integration_bid
        )
        if refund is None:
            return None
        return Reported(refund.order.order_bid, getattr(refund, "outcome", ""))

    def staff_note(self, *, order_bid: str, actor: Any, message: str) -> None:
        order = Order.objects.filter(order_bid=order_bid).first()
        if order is None:
            return
        lifecycle.order_event_write(
            order=order,
            kind=OrderEventKind.NOTE,
            message=message,
            source=f"admin:{getattr(actor, 'username', '') or 'unknown'}",
            actor=actor,
        )
