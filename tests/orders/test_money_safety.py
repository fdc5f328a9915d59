"""Money safety under attack, carelessness and failure (through the sandbox channel).

- One purchase per user and product: concurrent creates give one live order; a
  payment that still lands on a second order of an owned product is refunded (or
  flagged, by PAY_DUPLICATE_PAYMENT_POLICY); one on a dead order of a product not
  owned yet is honoured.
- Refund approval counts every staff refund of an order, through every door, per
  currency.
- A refund that fails after succeeding restores the order and is listed for staff.
- Reconciliation gives up after a bounded number of tries and lists what it could not
  settle for staff, who retry or resolve it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import checks
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders import services, support
from orders.models import (
    ApprovalStatus,
    Attention,
    AttentionKind,
    AttentionStatus,
    Order,
    OrderStatus,
    Refund,
    RefundApproval,
    RefundStatus,
)
from payments import registry
from payments.models import AttemptStatus, InboxStatus, SandboxAttempt, WebhookEvent
from payments.providers import sandbox
from payments.providers.base import ProviderUnavailable
from payments.services import webhook_receive
from tests.factories import ProductFactory, StaffFactory, UserFactory
from tests.sandbox import paid_through_sandbox, sandbox_confirm
from tests.threads import run_together

pytestmark = pytest.mark.usefixtures("sandbox_channel")

SandboxProvider = type(registry.get_provider_any("sandbox"))


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0]}")
    return client


def signed(event: dict) -> tuple[bytes, dict]:
    body = json.dumps(event).encode()
    return body, {sandbox.SIGNATURE_HEADER: sandbox.sign(body)}


def unclosable():
    """The provider cannot be reached to close an attempt (a failed close)."""
    return mock.patch.object(
        SandboxProvider,
        "close_payment",
        side_effect=ProviderUnavailable("sandbox is down", channel="sandbox"),
    )


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what the code defers to after its commit (closing attempts, sending
    refunds), as a real commit would; the test's own transaction never commits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# ---- 1. one purchase per user and product ----


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_creates_give_one_live_order(settings):
    settings.API_THROTTLE_ORDERS = "1000/minute"
    product = ProductFactory(price=Decimal("19.90"))
    user = UserFactory()
    token = Token.objects.create(user=user).key

    def create(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.post("/api/orders/", {"product": product.product_bid}, format="json")
        return response.status_code, response.json().get("order_bid")

    results = run_together(create, 20)
    assert [r for r in results if isinstance(r, Exception)] == []
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 19 + [201], results
    assert len({bid for _, bid in results}) == 1
    assert Order.objects.filter(user_bid=str(user.pk), product_bid=product.product_bid).count() == 1


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_two_payments_of_two_orders_at_once_keep_one_purchase():
    """Two dead orders of one product, both paid at the same moment (their closes
    failed): one pays the product, the other is refunded automatically."""
    product = ProductFactory(price=Decimal("10.00"))
    deliveries = []
    with unclosable():
        for _ in range(2):
            order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
            attempt = services.payment_start(order=order).attempt
            services.order_cancel(order=order)
            deliveries.append(
                registry.get_provider("sandbox").complete(attempt.attempt_bid, succeeded=True)
            )
    results = run_together(
        lambda i: webhook_receive(
            channel="sandbox", body=deliveries[i % 2][0], headers=deliveries[i % 2][1]
        ),
        20,
    )
    assert all(r.http_status == 200 for r in results), results
    orders = Order.objects.filter(user_bid="buyer").order_by("id")
    assert sorted(o.status for o in orders) == [OrderStatus.PAID, OrderStatus.REFUNDED]
    refund = Refund.objects.get()
    assert refund.status == RefundStatus.SUCCEEDED and "duplicate purchase" in refund.reason


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_two_payments_that_meet_inside_the_payment_still_keep_one_purchase():
    """The same, with the two payments made to meet where each decides whether the user
    already owns the product: without the purchase lock both would pay."""
    import contextlib
    import threading

    product = ProductFactory(price=Decimal("10.00"))
    deliveries = []
    with unclosable():
        for _ in range(2):
            order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
            attempt = services.payment_start(order=order).attempt
            services.order_cancel(order=order)
            provider = registry.get_provider("sandbox")
            deliveries.append(provider.complete(attempt.attempt_bid, succeeded=True))
    meet = threading.Barrier(2, timeout=3)
    real = services._order_paid

    def paced(**kwargs):
        # With the lock the other payment waits outside: no meeting, the wait times out.
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait()
        return real(**kwargs)

    with mock.patch.object(services, "_order_paid", paced):
        results = run_together(
            lambda i: webhook_receive(
                channel="sandbox", body=deliveries[i][0], headers=deliveries[i][1]
            ),
            2,
        )
    assert all(r.http_status == 200 for r in results), results
    statuses = sorted(o.status for o in Order.objects.filter(user_bid="buyer"))
    assert statuses == [OrderStatus.PAID, OrderStatus.REFUNDED]


@pytest.mark.django_db
def test_a_payment_on_a_second_order_of_an_owned_product_is_refunded(committed):
    product = ProductFactory(price=Decimal("19.90"))
    first, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    stale = services.payment_start(order=first).attempt
    with unclosable():
        services.order_cancel(order=first)
    second, created = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    assert created and second.pk != first.pk
    sandbox_confirm(services.payment_start(order=second).attempt.attempt_bid)

    with committed():  # the dead order's QR code, paid
        outcome, _, _ = sandbox_confirm(stale.attempt_bid)
    assert outcome.http_status == 200
    first.refresh_from_db()
    assert first.status == OrderStatus.REFUNDED
    assert first.paid_price == first.refunded_price == Decimal("19.90")
    refund = Refund.objects.get(order=first)
    assert refund.status == RefundStatus.SUCCEEDED
    assert f"already owned through order {second.order_bid}" in refund.reason
    messages = " ".join(first.events.values_list("message", flat=True))
    assert "refunded automatically" in messages and "late" in messages
    second.refresh_from_db()
    assert second.status == OrderStatus.PAID


@pytest.mark.django_db
def test_flag_policy_keeps_the_second_purchase_for_staff(settings, admin_client):
    settings.PAY_DUPLICATE_PAYMENT_POLICY = "flag"
    product = ProductFactory(price=Decimal("19.90"))
    first, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    stale = services.payment_start(order=first).attempt
    with unclosable():
        services.order_cancel(order=first)
    second, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    sandbox_confirm(services.payment_start(order=second).attempt.attempt_bid)
    sandbox_confirm(stale.attempt_bid)

    first.refresh_from_db()
    assert first.status == OrderStatus.PAID and not Refund.objects.exists()
    flagged = Attention.objects.get(kind=AttentionKind.DUPLICATE_PURCHASE)
    assert flagged.status == AttentionStatus.OPEN and flagged.order == first
    assert second.order_bid in flagged.reason
    listing = admin_client.get("/admin/orders/attention/?status__exact=open")
    assert listing.status_code == 200 and first.order_bid.encode() in listing.content


@pytest.mark.django_db
def test_a_late_payment_for_a_product_not_owned_is_honoured_and_cancels_the_live_order():
    product = ProductFactory(price=Decimal("19.90"))
    first, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    stale = services.payment_start(order=first).attempt
    with unclosable():
        services.order_cancel(order=first)
    live, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    sandbox_confirm(stale.attempt_bid)
    first.refresh_from_db()
    live.refresh_from_db()
    assert first.status == OrderStatus.PAID and not Refund.objects.exists()
    assert "late: the order was cancelled" in first.events.get(to_status=OrderStatus.PAID).message
    assert live.status == OrderStatus.CANCELLED


@pytest.mark.django_db
def test_a_repriced_product_times_out_the_old_order_and_closes_its_attempt(committed):
    product = ProductFactory(price=Decimal("19.90"))
    old, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=old).attempt
    product.price = Decimal("29.90")
    product.save()
    with committed():
        new, created = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    assert created and new.payable_price == Decimal("29.90")
    old.refresh_from_db()
    assert old.status == OrderStatus.TIMEOUT
    closed = SandboxAttempt.objects.get(attempt_bid=attempt.attempt_bid)
    assert closed.status == AttemptStatus.CLOSED
    assert closed.provider_state != "pending"  # the buyer can no longer pay it


# ---- 2. cancel and expiry close the provider side ----


@pytest.mark.django_db
def test_cancel_closes_the_attempt_so_it_cannot_be_paid(committed):
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    with committed():
        services.order_cancel(order=order)
    attempt = SandboxAttempt.objects.get(pk=attempt.pk)
    assert attempt.status == AttemptStatus.CLOSED and attempt.provider_state == "closed"
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


@pytest.mark.django_db
def test_expiry_closes_the_attempts(committed):
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(hours=1))
    with committed():
        assert services.orders_expire() == 1
    assert SandboxAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.CLOSED


@pytest.mark.django_db
def test_a_failed_close_is_retried_by_reconciliation(committed):
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    with unclosable(), committed():
        services.order_cancel(order=order)
    assert SandboxAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.PENDING
    assert "could not be closed" in " ".join(order.events.values_list("message", flat=True))
    SandboxAttempt.objects.filter(pk=attempt.pk).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    services.payments_reconcile(older_than_seconds=60)
    assert SandboxAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.CLOSED


# ---- 3. refund approval cannot be bypassed ----


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
    support.refund_approve(approval=approval, actor=StaffFactory())
    approval.refresh_from_db()
    assert approval.refund.status == RefundStatus.SUCCEEDED
    assert order.events.filter(message__contains="approved").exists()


@pytest.mark.django_db
def test_admin_refunds_count_together_with_api_refunds(thresholds):
    order = paid_through_sandbox(price="1000.00")
    staff = StaffFactory()
    services.refund_request(order=order, amount=Decimal("250.00"), reason="api", actor=staff)
    held = support.refund_request_staff(
        order=order, amount=Decimal("60.00"), reason="admin", actor=staff
    )
    assert isinstance(held, RefundApproval)
    with pytest.raises(support.ApprovalNotAllowed):
        support.refund_approve(approval=held, actor=staff)  # never the requester


@pytest.mark.django_db
def test_a_currency_without_a_threshold_needs_approval_for_every_refund(thresholds):
    product = ProductFactory(price=Decimal("5.00"), currency="usd")
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    sandbox_confirm(services.payment_start(order=order).attempt.attempt_bid)
    answer = api_for(StaffFactory()).post(
        "/api/refunds/", {"order": order.order_bid, "amount": "0.01", "reason": "r"}, format="json"
    )
    assert answer.status_code == 202 and not Refund.objects.exists()
    rejected = support.refund_reject(approval=RefundApproval.objects.get(), actor=StaffFactory())
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


# ---- 4. a refund that fails after succeeding ----


def refund_event(event_id: str, refund: Refund, status: str) -> tuple[bytes, dict]:
    attempt = SandboxAttempt.objects.get(attempt_bid=refund.attempt_bid)
    return signed(
        {
            "id": event_id,
            "type": f"refund.{status}",
            "data": {
                "object": {
                    "id": refund.provider_refund_id,
                    "object": "refund",
                    "payment": attempt.payment_id,
                    "refund_bid": refund.refund_bid,
                    "amount": int(refund.amount * 100),
                    "currency": refund.currency,
                    "status": status,
                    "failure_code": "account_closed" if status == "failed" else "",
                }
            },
        }
    )


@pytest.mark.django_db
def test_a_refund_that_fails_after_succeeding_restores_the_order(admin_client):
    order = paid_through_sandbox(price="19.90")
    refund = services.refund_request(order=order, reason="all of it")
    order.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and order.status == OrderStatus.REFUNDED

    body, headers = refund_event("evt_refund_failed", refund, "failed")
    outcome = webhook_receive(channel="sandbox", body=body, headers=headers)
    assert outcome.http_status == 200
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == RefundStatus.FAILED
    assert order.status == OrderStatus.PAID and order.refunded_price == Decimal("0.00")
    assert services.order_refundable_now(order) == Decimal("19.90")
    attempt = SandboxAttempt.objects.get(attempt_bid=refund.attempt_bid)
    assert attempt.status == AttemptStatus.PAID
    flagged = Attention.objects.get(kind=AttentionKind.REFUND_REVERSED)
    assert flagged.status == AttentionStatus.OPEN and flagged.order == order
    row = WebhookEvent.objects.get(event_id="evt_refund_failed")
    assert row.status == InboxStatus.APPLIED
    assert "succeeded -> failed" in row.result and "paid" in row.result
    # Repeated, the event changes nothing more; a late "succeeded" does not undo it.
    webhook_receive(channel="sandbox", body=body, headers=headers)
    late = refund_event("evt_refund_succeeded_again", refund, "succeeded")
    webhook_receive(channel="sandbox", body=late[0], headers=late[1])
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
    webhook_receive(channel="sandbox", body=body, headers=headers)
    order.refresh_from_db()
    assert order.refunded_price == Decimal("3.00") and order.status == OrderStatus.PAID


def test_payments_still_only_move_forward():
    assert OrderStatus.PAID not in services.TRANSITIONS[OrderStatus.REFUNDED]
    assert {OrderStatus.REFUNDED: frozenset({OrderStatus.PAID})} == services.REVERSALS


# ---- 5. reconciliation never leaves anything pending forever ----


def _stale_pending_refund(order) -> Refund:
    with (
        mock.patch.object(
            SandboxProvider, "refund", side_effect=ProviderUnavailable("down", channel="sandbox")
        ),
        pytest.raises(ProviderUnavailable),
    ):
        services.refund_request(order=order, amount=Decimal("5.00"), reason="r")
    refund = Refund.objects.get(order=order)
    Refund.objects.filter(pk=refund.pk).update(
        created_at=timezone.now() - timedelta(hours=1), submitted_at=None
    )
    return refund


@pytest.mark.django_db
def test_reconciliation_gives_up_after_max_tries_and_staff_retry(settings, admin_client):
    settings.RECONCILE_MAX_TRIES = 3
    order = paid_through_sandbox(price="19.90")
    refund = _stale_pending_refund(order)
    failing = mock.patch.object(
        SandboxProvider, "find_refund", side_effect=ProviderUnavailable("404", channel="sandbox")
    )
    with failing:
        for run in range(3):
            Refund.objects.filter(pk=refund.pk).update(submitted_at=None)
            report = services.payments_reconcile(older_than_seconds=60)
            assert report.checked == 1, run
        row = Attention.objects.get(subject_bid=refund.refund_bid)
        assert row.status == AttentionStatus.OPEN and row.tries == 3
        assert "404" in row.last_answer
        # Left to staff: later runs do not pick it up.
        assert services.payments_reconcile(older_than_seconds=60).checked == 0
    listing = admin_client.get("/admin/orders/attention/?status__exact=open&kind__exact=unsettled")
    assert refund.refund_bid.encode() in listing.content
    dashboard = admin_client.get("/admin/orders/order/dashboard/")
    assert dashboard.context["attention_open"] == 1

    staff = StaffFactory()
    Refund.objects.filter(pk=refund.pk).update(submitted_at=None)  # the last run's lease
    support.attention_retry(attention=row, actor=staff)  # the provider answers again
    row.refresh_from_db()
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert row.status == AttentionStatus.RESOLVED and row.resolved_by == staff


@pytest.mark.django_db
def test_staff_resolve_with_a_note(settings):
    settings.RECONCILE_MAX_TRIES = 1
    order = paid_through_sandbox(price="19.90")
    refund = _stale_pending_refund(order)
    with mock.patch.object(
        SandboxProvider, "find_refund", side_effect=ProviderUnavailable("500", channel="sandbox")
    ):
        services.payments_reconcile(older_than_seconds=60)
    row = Attention.objects.get(subject_bid=refund.refund_bid)
    assert row.status == AttentionStatus.OPEN
    staff = StaffFactory()
    with pytest.raises(Exception) as refused:
        support.attention_resolve(attention=row, actor=staff, note=" ")
    assert getattr(refused.value, "code", "") == "note_required"
    support.attention_resolve(attention=row, actor=staff, note="refunded by bank transfer")
    row.refresh_from_db()
    assert row.status == AttentionStatus.RESOLVED and row.note == "refunded by bank transfer"
    assert order.events.filter(message__contains="refunded by bank transfer", actor=staff).exists()


@pytest.mark.django_db
def test_a_refund_pending_at_the_provider_too_long_needs_attention(settings):
    settings.RECONCILE_MAX_PENDING_HOURS = 1
    order = paid_through_sandbox(price="19.90")
    refund = _stale_pending_refund(order)
    Refund.objects.filter(pk=refund.pk).update(created_at=timezone.now() - timedelta(hours=2))
    with (
        mock.patch.object(SandboxProvider, "find_refund", return_value=None),
        mock.patch.object(services, "refund_submit"),
    ):
        services.payments_reconcile(older_than_seconds=60)
    row = Attention.objects.get(subject_bid=refund.refund_bid)
    assert row.status == AttentionStatus.OPEN and "RECONCILE_MAX_PENDING_HOURS" in row.reason


# ---- holes a review found, closed ----


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
    webhook_receive(channel="sandbox", body=body, headers=headers)
    again = refund_event("evt_succeeded_again", refund, "succeeded")
    webhook_receive(channel="sandbox", body=again[0], headers=again[1])
    conflict = Attention.objects.get(kind=AttentionKind.REFUND_CONFLICT)
    assert conflict.subject_bid == refund.refund_bid and conflict.status == AttentionStatus.OPEN
    with pytest.raises(Exception) as refused:
        support.attention_retry(attention=conflict, actor=StaffFactory())
    assert refused.value.code == "attention_not_retryable"
    # The reversed refund: the provider still holds it as made, so it is not sent again.
    reversed_row = Attention.objects.get(kind=AttentionKind.REFUND_REVERSED)
    with pytest.raises(Exception) as held:
        support.attention_retry(attention=reversed_row, actor=StaffFactory())
    assert held.value.code == "refund_not_retryable"
    assert Refund.objects.count() == 1


@pytest.mark.django_db
def test_a_failed_refund_is_listed_and_a_staff_retry_closes_it():
    order = paid_through_sandbox(price="19.90")
    refund = services.refund_request(order=order, amount=Decimal("5.00"), reason="part")
    Refund.objects.filter(pk=refund.pk).update(status=RefundStatus.PENDING)
    attempt = SandboxAttempt.objects.get(attempt_bid=refund.attempt_bid)
    attempt.provider_refunds = [
        {**r, "status": "failed"} if r["refund_bid"] == refund.refund_bid else r
        for r in attempt.provider_refunds
    ]
    attempt.save()
    body, headers = refund_event("evt_failed_pending", refund, "failed")
    webhook_receive(channel="sandbox", body=body, headers=headers)
    listed = Attention.objects.get(kind=AttentionKind.REFUND_FAILED)
    assert listed.status == AttentionStatus.OPEN and "5.00 CNY failed" in listed.reason
    after = support.attention_retry(attention=listed, actor=StaffFactory())
    assert after.status == AttentionStatus.RESOLVED and "asked for again" in after.note
    assert Refund.objects.filter(status=RefundStatus.SUCCEEDED).count() == 1


@pytest.mark.django_db
def test_an_approval_and_its_refund_are_written_together(thresholds):
    order = paid_through_sandbox(price="1000.00")
    asker, approver = StaffFactory(), StaffFactory()
    held = services.refund_request(order=order, amount=Decimal("400.00"), reason="r", actor=asker)
    assert isinstance(held, RefundApproval)
    crash = mock.patch.object(Refund.objects, "create", side_effect=RuntimeError("crash"))
    with crash, pytest.raises(RuntimeError):
        support.refund_approve(approval=held, actor=approver)
    held.refresh_from_db()
    assert held.status == ApprovalStatus.AWAITING  # never approved without its refund
    refund = support.refund_approve(approval=held, actor=approver)
    held.refresh_from_db()
    assert held.status == ApprovalStatus.APPROVED and held.refund == refund
    assert held.decided_by == approver


@pytest.mark.django_db
def test_cancel_closes_a_declined_attempt_too(committed):
    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    attempt = services.payment_start(order=order).attempt
    sandbox_confirm(attempt.attempt_bid, succeeded=False)  # declined: may be tried again
    assert SandboxAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.FAILED
    with committed():
        services.order_cancel(order=order)
    closed = SandboxAttempt.objects.get(pk=attempt.pk)
    assert closed.status == AttemptStatus.CLOSED and closed.provider_state == "closed"


@pytest.mark.django_db
def test_an_order_cancelled_while_its_payment_starts_gets_no_payable_attempt():
    from orders.errors import OrderNotPayable

    product = ProductFactory(price=Decimal("19.90"))
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    real_start = SandboxProvider.start_payment

    def start_while_cancelled(self, request):
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
        return real_start(self, request)

    cancelled_meanwhile = mock.patch.object(SandboxProvider, "start_payment", start_while_cancelled)
    with cancelled_meanwhile, pytest.raises(OrderNotPayable):
        services.payment_start(order=order)
    attempt = SandboxAttempt.objects.get(order_bid=order.order_bid)
    assert attempt.status == AttemptStatus.CLOSED and attempt.provider_state == "closed"


@pytest.mark.django_db
def test_marking_paid_by_hand_refuses_a_product_already_owned():
    from orders.errors import AlreadyPurchased

    owned = paid_through_sandbox(user_bid="buyer", price="19.90")
    other = Order.objects.create(
        order_bid="f" * 32,
        product_bid=owned.product_bid,
        user_bid="buyer",
        payable_price=Decimal("19.90"),
        status=OrderStatus.TIMEOUT,
    )
    with pytest.raises(AlreadyPurchased):
        support.order_mark_paid_by_hand(order=other, actor=StaffFactory(), reason="bank")
    other.refresh_from_db()
    assert other.status == OrderStatus.TIMEOUT
