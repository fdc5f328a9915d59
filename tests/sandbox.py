"""Paying through the sandbox channel in tests, the way a buyer would."""

from decimal import Decimal

from orders import services
from orders.models import Order, OrderStatus
from payments import registry
from payments.services import WebhookOutcome
from payments.tasks import webhook_deliver
from tests.factories import ProductFactory


def sandbox_confirm(
    attempt_bid: str, *, succeeded: bool = True
) -> tuple[WebhookOutcome, bytes, dict]:
    """The buyer pays (or declines) on the confirm page: the sandbox's signed event
    goes through the webhook inbox. Returns the outcome and the delivery."""
    body, headers = registry.get_provider("sandbox").complete(attempt_bid, succeeded=succeeded)
    return webhook_deliver(channel="sandbox", body=body, headers=headers), body, headers


def paid_through_sandbox(*, user_bid: str = "buyer", price: str = "19.90") -> Order:
    """An order of a new product, paid through the sandbox (the channel must be on)."""
    product = ProductFactory(price=Decimal(price), currency="cny")
    order, _ = services.order_create(user_bid=user_bid, product_bid=product.product_bid)
    started = services.payment_start(order=order)
    outcome, _, _ = sandbox_confirm(started.attempt.attempt_bid)
    assert outcome.http_status == 200, outcome
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order
