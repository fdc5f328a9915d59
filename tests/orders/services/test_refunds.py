"""Refunds: approval counts every staff refund of an order, through every door, per
currency; a refund that fails after succeeding restores the order and is listed for
staff; our own refused call never reverses a refund that succeeded."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest
from django.core import checks

from orders import selectors, services
from orders.errors import ApprovalNotAllowed
from orders.models import (
    ApprovalStatus,
    Attention,
    AttentionKind,
    AttentionStatus,
    OrderStatus,
    Refund,
    RefundApproval,
    RefundStatus,
)
from orders.services import staff as staff_services
from payments import registry
from payments.models import AttemptStatus, InboxStatus, SandboxAttempt, WebhookEvent
from payments.tasks import webhook_deliver
from tests.factories import ProductFactory, StaffFactory
from tests.orders.services.helpers import SandboxProvider, api_for, refund_event
from tests.sandbox import paid_through_sandbox, sandbox_confirm
from tests.threads import run_together

pytestmark = pytest.mark.usefixtures("sandbox_channel")


@pytest.fixture
def thresholds(settings):
    settings.REFUND_APPROVAL_THRESHOLDS = {"cny": 30000}  # 300.00 CNY per order
    return settings


@pytest.mark.django_db
def test_small_api_refunds_add_up_to_the_threshold(thresholds):
    order = paid_through_sandbox(price="1000.00")
    staff = StaffFactory()
    api = api_for(staff)
    with mock.patch.object(
        SandboxProvider, "refund", wraps=registry.get_provider("sandbox").refund
    ) as sent:
        answers = [
            api.post(
                "/api/refunds/",
                {"order": order.order_bid, "amount": "100.00", "reason": f"r{i}"},
                format="json",
            )
            for i in range(5)
        ]
    assert [a.status_code for a in answers] == [201, 201, 201, 202, 202]
    assert sent.call_count == 3
    held = answers[3].json()
    assert held["code"] == "refund_awaiting_approval"
    assert held["approval"]["amount"] == "100.00" and held["approval"]["status"] == "awaiting"
    assert RefundApproval.objects.filter(status=ApprovalStatus.AWAITING).count() == 2
    order.refresh_from_db()
    assert order.refunded_price == Decimal("300.00")
    # Approved by someone else, the refund is sent; its approval is on the history.
    approval = RefundApproval.objects.order_by("id").first()
    staff_services.refund_approve(approval=approval, actor=StaffFactory())
    approval.refresh_from_db()
    assert approval.refund.status == RefundStatus.SUCCEEDED
    assert order.events.filter(message__contains="approved").exists()


@pytest.mark.django_db
def test_admin_refunds_count_together_with_api_refunds(thresholds):
    order = paid_through_sandbox(price="1000.00")
    staff = StaffFactory()
    services.refund_request(order=order, amount=Decimal("250.00"), reason="api", actor=staff)
    held = staff_services.refund_request_staff(
        order=order, amount=Decimal("60.00"), reason="admin", actor=staff
    )
    assert isinstance(held, RefundApproval)
    with pytest.raises(ApprovalNotAllowed):
        staff_services.refund_approve(approval=held, actor=staff)  # never the requester


@pytest.mark.django_db
def test_a_currency_without_a_threshold_needs_approval_for_every_refund(thresholds):
    product = ProductFactory(price=Decimal("5.00"), currency="usd")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    sandbox_confirm(services.payment_start(order=order).attempt.attempt_bid)
    answer = api_for(StaffFactory()).post(
        "/api/refunds/", {"order": order.order_bid, "amount": "0.01", "reason": "r"}, format="json"
    )
    assert answer.status_code == 202 and not Refund.objects.exists()
    rejected = staff_services.refund_reject(
        approval=RefundApproval.objects.get(), actor=StaffFactory()
    )
    assert rejected.status == ApprovalStatus.REJECTED
    assert order.events.filter(message__contains="rejected").exists()


def test_thresholds_are_checked_at_start_up(settings):
    from payments_project.checks import check_approval_thresholds

    settings.REFUND_APPROVAL_THRESHOLDS_RAW = "CNY:100000,USD:15000,JPY:15000,*:5000"
    assert check_approval_thresholds() == []
    settings.REFUND_APPROVAL_THRESHOLDS_RAW = "CNY:10.5,XXQ:100,USD,usd:1,USD:2"
    problems = check_approval_thresholds()
    assert {p.id for p in problems} == {"config.E014"}
    text = " ".join(p.msg for p in problems)
    for bad in ("'CNY:10.5'", "XXQ", "'USD'", "USD is given twice"):
        assert bad in text, text
    assert all(isinstance(p, checks.Error) for p in problems)


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_staff_refunds_cannot_slip_under_the_threshold(thresholds):
    order = paid_through_sandbox(price="5000.00")
    staff = StaffFactory()
    results = run_together(
        lambda i: services.refund_request(
            order=order, amount=Decimal("100.00"), reason=f"r{i}", actor=staff
        ),
        20,
    )
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sum(isinstance(r, Refund) for r in results) == 3
    assert RefundApproval.objects.filter(status=ApprovalStatus.AWAITING).count() == 17
    order.refresh_from_db()
    assert order.refunded_price == Decimal("300.00")


@pytest.mark.django_db
def test_an_approval_and_its_refund_are_written_together(thresholds):
    order = paid_through_sandbox(price="1000.00")
    asker, approver = StaffFactory(), StaffFactory()
    held = services.refund_request(order=order, amount=Decimal("400.00"), reason="r", actor=asker)
    assert isinstance(held, RefundApproval)
    crash = mock.patch.object(Refund.objects, "create", side_effect=RuntimeError("crash"))
    with crash, pytest.raises(RuntimeError):
        staff_services.refund_approve(approval=held, actor=approver)
    held.refresh_from_db()
    assert held.status == ApprovalStatus.AWAITING  # never approved without its refund
    refund = staff_services.refund_approve(approval=held, actor=approver)
    held.refresh_from_db()
    assert held.status == ApprovalStatus.APPROVED and held.refund == refund
    assert held.decided_by == approver


@pytest.mark.django_db
def test_a_refund_that_fails_after_succeeding_restores_the_order(admin_client):
    order = paid_through_sandbox(price="19.90")
    refund = services.refund_request(order=order, reason="all of it")
    order.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and order.status == OrderStatus.REFUNDED

    body, headers = refund_event("evt_refund_failed", refund, "failed")
    outcome = webhook_deliver(channel="sandbox", body=body, headers=headers)
    assert outcome.http_status == 200
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == RefundStatus.FAILED
    assert order.status == OrderStatus.PAID and order.refunded_price == Decimal("0.00")
    assert selectors.order_refundable_amount(order) == Decimal("19.90")
    attempt = SandboxAttempt.objects.get(attempt_bid=refund.attempt_bid)
    assert attempt.status == AttemptStatus.PAID
    flagged = Attention.objects.get(kind=AttentionKind.REFUND_REVERSED)
    assert flagged.status == AttentionStatus.OPEN and flagged.order == order
    row = WebhookEvent.objects.get(event_id="evt_refund_failed")
    assert row.status == InboxStatus.APPLIED
    assert "succeeded -> failed" in row.result and "paid" in row.result
    # Repeated, the event changes nothing more; a late "succeeded" does not undo it.
    webhook_deliver(channel="sandbox", body=body, headers=headers)
    late = refund_event("evt_refund_succeeded_again", refund, "succeeded")
    webhook_deliver(channel="sandbox", body=late[0], headers=late[1])
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.refunded_price == 0
    page = admin_client.get(f"/admin/orders/order/{order.pk}/change/")
    assert b"failed after it succeeded" in page.content


@pytest.mark.django_db
def test_a_partial_refund_that_fails_after_succeeding_restores_the_total():
    order = paid_through_sandbox(price="19.90")
    first = services.refund_request(order=order, amount=Decimal("5.00"), reason="part")
    services.refund_request(order=order, amount=Decimal("3.00"), reason="part")
    body, headers = refund_event("evt_f", first, "failed")
    webhook_deliver(channel="sandbox", body=body, headers=headers)
    order.refresh_from_db()
    assert order.refunded_price == Decimal("3.00") and order.status == OrderStatus.PAID


@pytest.mark.django_db
def test_our_own_refused_call_never_reverses_a_refund_that_succeeded():
    """The first answer was lost; the webhook says succeeded; a retry's call is then
    refused ("exceeds what remains"): the refund stays succeeded."""
    order = paid_through_sandbox(price="19.90")
    refund = services.refund_request(order=order, reason="all")
    assert refund.status == RefundStatus.SUCCEEDED
    from payments.providers.base import REFUND_FAILED, RefundState

    services.refund_apply(
        channel="sandbox",
        state=RefundState(
            provider_refund_id="",
            provider_payment_id="",
            state=REFUND_FAILED,
            amount=1990,
            currency="cny",
            refund_bid=refund.refund_bid,
            failure_code="amount_exceeds",
        ),
        source="sandbox",
        refused_now=True,
    )
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and order.status == OrderStatus.REFUNDED
    assert not Attention.objects.exists()


@pytest.mark.django_db
def test_a_refund_reported_succeeded_after_it_failed_is_a_conflict_not_retried():
    order = paid_through_sandbox(price="19.90")
    refund = services.refund_request(order=order, amount=Decimal("5.00"), reason="part")
    body, headers = refund_event("evt_failed", refund, "failed")
    webhook_deliver(channel="sandbox", body=body, headers=headers)
    again = refund_event("evt_succeeded_again", refund, "succeeded")
    webhook_deliver(channel="sandbox", body=again[0], headers=again[1])
    conflict = Attention.objects.get(kind=AttentionKind.REFUND_CONFLICT)
    assert conflict.subject_bid == refund.refund_bid and conflict.status == AttentionStatus.OPEN
    with pytest.raises(Exception) as refused:
        staff_services.attention_retry(attention=conflict, actor=StaffFactory())
    assert refused.value.code == "attention_not_retryable"
    # The reversed refund: the provider still holds it as made, so it is not sent again.
    reversed_row = Attention.objects.get(kind=AttentionKind.REFUND_REVERSED)
    with pytest.raises(Exception) as held:
        staff_services.attention_retry(attention=reversed_row, actor=StaffFactory())
    assert held.value.code == "refund_not_retryable"
    assert Refund.objects.count() == 1
