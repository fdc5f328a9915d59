"""Real threads on MariaDB: locks keep money right under concurrent requests.

SQLite serialises everything and has no row locks, so these run only in the MariaDB
pass of the test command.
"""

import json
from decimal import Decimal

import pytest

from orders import services
from orders.models import OrderEvent, OrderStatus, Refund, RefundStatus
from payments import registry
from payments.models import InboxStatus, SandboxAttempt, WebhookEvent
from payments.providers import sandbox
from payments.tasks import webhook_deliver
from tests.factories import ProductFactory
from tests.sandbox import paid_through_sandbox
from tests.threads import run_together

pytestmark = [
    pytest.mark.mariadb,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sandbox_channel"),
]

THREADS = 20


def test_concurrent_refunds_never_refund_more_than_was_paid():
    order = paid_through_sandbox(price="19.90")

    def refund(i):
        return services.refund_request(order=order, amount=Decimal("5.00"), reason=f"r{i}")

    results = run_together(refund, THREADS)
    errors = [r for r in results if isinstance(r, Exception)]
    succeeded = Refund.objects.filter(order=order, status=RefundStatus.SUCCEEDED)
    assert succeeded.count() == 3  # 3 x 5.00 fit in 19.90; the 4th would not
    assert {type(e).__name__ for e in errors} == {"RefundExceedsRefundable"}
    assert len(errors) == THREADS - 3
    order.refresh_from_db()
    assert order.refunded_price == Decimal("15.00") <= order.paid_price
    assert order.status == OrderStatus.PAID


def test_concurrent_deliveries_of_one_event_apply_it_once():
    product = ProductFactory()
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    body, headers = registry.get_provider("sandbox").complete(
        started.attempt.attempt_bid, succeeded=True
    )

    results = run_together(
        lambda i: webhook_deliver(channel="sandbox", body=body, headers=headers), THREADS
    )
    assert [r for r in results if isinstance(r, Exception)] == []
    assert all(result.http_status == 200 for result in results)
    assert sorted(r.code for r in results).count("applied") == 1
    assert WebhookEvent.objects.filter(channel="sandbox").count() == 1
    assert WebhookEvent.objects.get().status == InboxStatus.APPLIED
    assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.PAID).count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == order.payable_price


def signed_event(event):
    body = json.dumps(event).encode()
    return body, {sandbox.SIGNATURE_HEADER: sandbox.sign(body)}


def test_refund_event_before_payment_event_converges():
    """The provider reports a refund (made on its dashboard) before the payment it
    refunds: the refund waits (5xx, kept), the payment applies, the retry refunds."""
    product = ProductFactory(price=Decimal("10.00"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(order=order)
    attempt = SandboxAttempt.objects.get(attempt_bid=started.attempt.attempt_bid)
    payment = {
        "id": attempt.payment_id, "object": "payment", "attempt_bid": attempt.attempt_bid,
        "amount": 1000, "currency": "cny", "status": "succeeded",
    }  # fmt: skip
    refund = {
        "id": "sbxre_dashboard", "object": "refund", "payment": attempt.payment_id,
        "amount": 1000, "currency": "cny", "status": "succeeded",
    }  # fmt: skip
    refund_event = signed_event(
        {"id": "evt_r", "type": "refund.succeeded", "data": {"object": refund}}
    )
    payment_event = signed_event(
        {"id": "evt_p", "type": "payment.succeeded", "data": {"object": payment}}
    )

    first = webhook_deliver(channel="sandbox", body=refund_event[0], headers=refund_event[1])
    assert first.http_status == 503 and first.code == "not_applicable_yet"
    assert WebhookEvent.objects.get(event_id="evt_r").status == InboxStatus.FAILED

    assert (
        webhook_deliver(
            channel="sandbox", body=payment_event[0], headers=payment_event[1]
        ).http_status
        == 200
    )
    retry = webhook_deliver(channel="sandbox", body=refund_event[0], headers=refund_event[1])
    assert retry.http_status == 200 and retry.code == "applied"

    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.refunded_price == order.paid_price == Decimal("10.00")
    assert Refund.objects.get(order=order).provider_refund_id == "sbxre_dashboard"
    late = webhook_deliver(channel="sandbox", body=payment_event[0], headers=payment_event[1])
    assert late.code == "duplicate"
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
