"""The support console in the admin: refunds with approval, actions (the dashboard:
test_dashboard.py)."""

from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse

from orders import selectors, services
from orders.errors import RefundConfirmationStale, RefundExceedsRefundable
from orders.models import (
    ApprovalStatus,
    OrderEvent,
    OrderStatus,
    Refund,
    RefundApproval,
    RefundStatus,
)
from orders.services import staff as staff_services
from payments import registry
from payments.models import AttemptStatus, InboxStatus, SandboxAttempt, WebhookEvent
from payments.providers.base import ProviderUnavailable
from tests.factories import OrderFactory, StaffFactory, UserFactory
from tests.sandbox import paid_through_sandbox
from tests.threads import run_together

pytestmark = [pytest.mark.usefixtures("sandbox_channel")]

ORDERS = reverse("admin:orders_order_changelist")
APPROVALS = reverse("admin:orders_refundapproval_changelist")
REFUNDS = reverse("admin:orders_refund_changelist")
INBOX = reverse("admin:payments_webhookevent_changelist")


def refund_url(order):
    return reverse("admin:orders_order_refund", args=[order.pk])


def agent(username, *codenames):
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_order", *codenames]))
    return user


def log_entries(obj):
    return LogEntry.objects.filter(object_id=str(obj.pk))


def refund(client, order, amount, reason="customer asked", *, confirm=True):
    data = {"amount": str(amount), "reason": reason}
    if confirm:
        data["confirm"] = "yes"
    return client.post(refund_url(order), data)


# ---- the refund form ----


@pytest.mark.django_db
def test_refund_form_needs_the_add_refund_permission(client):
    order = paid_through_sandbox(user_bid="u1")
    client.force_login(agent("viewer"))
    assert client.get(refund_url(order)).status_code == 403
    assert refund(client, order, "1.00").status_code == 403
    page = client.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert page.status_code == 200 and refund_url(order) not in page.content.decode()
    assert not Refund.objects.exists()


@pytest.mark.django_db
def test_refund_form_defaults_to_all_refundable_and_confirms(client):
    order = paid_through_sandbox(user_bid="u1")
    client.force_login(agent("refunder", "add_refund"))
    page = client.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert refund_url(order) in page.content.decode()
    form = client.get(refund_url(order))
    assert form.status_code == 200
    assert form.context["form"].initial["amount"] == Decimal("19.90")
    assert "CN¥19.90" in form.content.decode()
    confirm = refund(client, order, "5.00", confirm=False)
    assert confirm.status_code == 200 and confirm.context["confirm"]
    assert "CN¥5.00" in confirm.content.decode()
    assert not Refund.objects.exists()  # nothing until confirmed


@pytest.mark.django_db
def test_refund_over_the_refundable_amount_is_a_form_error(client):
    order = paid_through_sandbox(user_bid="u1")
    client.force_login(agent("refunder", "add_refund"))
    response = refund(client, order, "20.00")
    assert response.status_code == 200
    assert "19.90 is refundable" in str(response.context["form"].errors["amount"])
    assert not Refund.objects.exists()


@pytest.mark.django_db
def test_refund_through_the_sandbox(client):
    order = paid_through_sandbox(user_bid="u1")
    user = agent("refunder", "add_refund")
    client.force_login(user)
    response = refund(client, order, "5.00")
    assert response.status_code == 302
    made = Refund.objects.get()
    assert made.status == RefundStatus.SUCCEEDED and made.amount == Decimal("5.00")
    assert made.requested_by == user
    order.refresh_from_db()
    assert order.refunded_price == Decimal("5.00")
    assert OrderEvent.objects.filter(order=order, actor=user, source="admin:refunder").exists()
    assert log_entries(order).filter(user=user).exists()
    # The default is now what remains.
    assert client.get(refund_url(order)).context["form"].initial["amount"] == Decimal("14.90")


@pytest.mark.django_db
def test_refund_list_action_opens_the_form(client):
    order = paid_through_sandbox(user_bid="u1")
    client.force_login(agent("refunder", "add_refund"))
    response = client.post(ORDERS, {"action": "refund_selected", "_selected_action": [order.pk]})
    assert response.status_code == 302 and response.url == refund_url(order)


@pytest.mark.django_db
def test_provider_error_is_a_message_not_a_server_error(client):
    order = paid_through_sandbox(user_bid="u1")
    client.force_login(agent("refunder", "add_refund"))
    provider = type(registry.get_provider("sandbox"))
    with mock.patch.object(
        provider, "refund", side_effect=ProviderUnavailable("sandbox is down", channel="sandbox")
    ):
        response = refund(client, order, "5.00")
    assert response.status_code == 302
    page = client.get(response.url)
    assert "sandbox is down" in page.content.decode()
    assert Refund.objects.get().status == RefundStatus.PENDING
    order.refresh_from_db()
    assert order.refunded_price == 0


# ---- approval of large refunds ----


@pytest.fixture
def threshold(settings):
    settings.REFUND_APPROVAL_THRESHOLDS = {"cny": 1000}
    return settings


@pytest.mark.django_db
def test_large_refund_waits_for_another_staff_member(client, threshold):
    order = paid_through_sandbox(user_bid="u1")
    asker = agent("asker", "add_refund", "change_refundapproval")
    approver = agent("approver", "add_refund", "change_refundapproval")
    agent_only = agent("agent", "add_refund")
    client.force_login(asker)
    provider = type(registry.get_provider("sandbox"))
    with mock.patch.object(provider, "refund") as provider_refund:
        response = refund(client, order, "15.00")
    assert response.status_code == 302
    provider_refund.assert_not_called()
    approval = RefundApproval.objects.get()
    assert approval.status == ApprovalStatus.AWAITING and not Refund.objects.exists()
    # Awaiting approval counts against what can be refunded.
    assert client.get(refund_url(order)).context["form"].initial["amount"] == Decimal("4.90")
    assert refund(client, order, "5.00").status_code == 200  # form error

    # The requester cannot approve their own refund.
    client.post(
        APPROVALS,
        {"action": "approve_selected", "_selected_action": [approval.pk], "confirm": "yes"},
    )
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.AWAITING and not Refund.objects.exists()

    # An agent without the lead's permission is not offered the action.
    client.force_login(agent_only)
    client.post(
        APPROVALS,
        {"action": "approve_selected", "_selected_action": [approval.pk], "confirm": "yes"},
    )
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.AWAITING and not Refund.objects.exists()

    client.force_login(approver)
    # First what would be refunded, and nothing sent; then, confirmed, the refund.
    approve = {"action": "approve_selected", "_selected_action": [approval.pk]}
    page = client.post(APPROVALS, approve)
    assert page.status_code == 200 and "Yes, approve and refund" in page.content.decode()
    assert "CN¥15.00" in page.content.decode() and "asker" in page.content.decode()
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.AWAITING and not Refund.objects.exists()
    client.post(APPROVALS, {**approve, "confirm": "yes"})
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.decided_by == approver
    assert approval.refund.status == RefundStatus.SUCCEEDED
    order.refresh_from_db()
    assert order.refunded_price == Decimal("15.00")
    assert OrderEvent.objects.filter(order=order, actor=approver).exists()
    assert log_entries(approval).filter(user=approver).exists()


@pytest.mark.django_db
def test_rejected_refund_refunds_nothing(client, threshold):
    order = paid_through_sandbox(user_bid="u1")
    client.force_login(agent("asker", "add_refund"))
    refund(client, order, "15.00")
    approval = RefundApproval.objects.get()
    rejecter = agent("rejecter", "add_refund", "change_refundapproval")
    client.force_login(rejecter)
    reject = {"action": "reject_selected", "_selected_action": [approval.pk], "confirm": "yes"}
    client.post(APPROVALS, reject)
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.REJECTED
    assert not Refund.objects.exists()
    order.refresh_from_db()
    assert order.refunded_price == 0 and selectors.order_refundable_amount(order) == Decimal(
        "19.90"
    )
    assert OrderEvent.objects.filter(order=order, actor=rejecter).exists()


@pytest.mark.django_db
def test_approvals_cannot_together_exceed_the_refundable(threshold):
    order = paid_through_sandbox(user_bid="u1")
    asker = agent("asker", "add_refund")
    staff_services.refund_request_staff(
        order=order, amount=Decimal("12.00"), reason="a", actor=asker
    )
    with pytest.raises(RefundExceedsRefundable):
        staff_services.refund_request_staff(
            order=order, amount=Decimal("12.00"), reason="b", actor=asker
        )


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_admin_and_api_refunds_at_once_never_exceed_what_was_paid(client):
    order = paid_through_sandbox(user_bid="u1")
    staff = agent("refunder", "add_refund")

    def go(i):
        if i % 2:
            return services.refund_request(order=order, amount=Decimal("6.00"), reason="api")
        return staff_services.refund_request_staff(
            order=order, amount=Decimal("6.00"), reason="admin", actor=staff
        )

    results = run_together(go, count=8)
    made = [r for r in results if isinstance(r, Refund)]
    refused = [r for r in results if isinstance(r, RefundExceedsRefundable)]
    assert len(made) == 3 and len(refused) == 5, results
    order.refresh_from_db()
    assert order.refunded_price == Decimal("18.00") <= order.paid_price


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_twenty_sends_of_one_refund_confirmation_refund_once():
    order = paid_through_sandbox(user_bid="u1")
    staff = agent("refunder", "add_refund")

    def go(i):
        return staff_services.refund_request_staff(
            order=order,
            amount=Decimal("3.00"),
            reason="double click",
            actor=staff,
            expected_refundable=Decimal("19.90"),
        )

    results = run_together(go, count=20)
    made = [r for r in results if isinstance(r, Refund)]
    stale = [r for r in results if isinstance(r, RefundConfirmationStale)]
    assert len(made) == 1 and len(stale) == 19, results
    order.refresh_from_db()
    assert order.refunded_price == Decimal("3.00")


# ---- actions ----


@pytest.mark.django_db
def test_mark_paid_by_hand(client):
    order = OrderFactory(payable_price=Decimal("30.00"), status=OrderStatus.UNPAID)
    user = agent("manager", "change_order")
    client.force_login(user)
    url = reverse("admin:orders_order_mark_paid", args=[order.pk])
    assert client.post(url, {"reason": ""}).status_code == 200  # reason required
    response = client.post(url, {"reason": "bank transfer 42"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("30.00")
    event = OrderEvent.objects.get(order=order, to_status=OrderStatus.PAID)
    assert event.actor == user and event.source == "admin:manager"
    assert "bank transfer 42" in event.message
    assert log_entries(order).filter(user=user).exists()
    # Not twice, and not without the permission.
    page = client.get(client.post(url, {"reason": "again"}).url)
    assert "only init, unpaid or timed-out" in page.content.decode()
    client.force_login(agent("viewer"))
    assert client.post(url, {"reason": "x"}).status_code == 403


@pytest.mark.django_db
def test_sync_action(client):
    order = paid_through_sandbox(user_bid="u1")
    user = agent("manager", "change_order")
    client.force_login(user)
    response = client.post(reverse("admin:orders_order_sync", args=[order.pk]))
    assert response.status_code == 302
    assert OrderEvent.objects.filter(order=order, actor=user, kind="note").exists()
    assert log_entries(order).filter(user=user, change_message__contains="Synced").exists()
    provider = type(registry.get_provider("sandbox"))
    with mock.patch.object(
        provider, "fetch_payment", side_effect=ProviderUnavailable("down", channel="sandbox")
    ):
        response = client.post(ORDERS, {"action": "sync_selected", "_selected_action": [order.pk]})
    assert response.status_code == 302
    assert "sync failed: down" in client.get(ORDERS).content.decode()


@pytest.mark.django_db
def test_retry_a_failed_refund(client):
    order = paid_through_sandbox(user_bid="u1")
    failed = Refund.objects.create(
        order=order,
        payment_channel="sandbox",
        amount=Decimal("4.00"),
        currency="cny",
        reason="retry me",
        status=RefundStatus.FAILED,
    )
    user = agent("refunder", "add_refund", "view_refund")
    client.force_login(user)
    response = client.post(REFUNDS, {"action": "retry_selected", "_selected_action": [failed.pk]})
    assert response.status_code == 302
    again = Refund.objects.exclude(pk=failed.pk).get()
    assert again.status == RefundStatus.SUCCEEDED
    assert again.reason == f"retry of {failed.refund_bid}: retry me"
    order.refresh_from_db()
    assert order.refunded_price == Decimal("4.00")
    assert OrderEvent.objects.filter(order=order, actor=user, kind="note").exists()
    assert log_entries(failed).filter(user=user).exists()

    # Once only: a second retry of the same failed refund is refused.
    client.post(REFUNDS, {"action": "retry_selected", "_selected_action": [failed.pk]})
    assert Refund.objects.count() == 2
    order.refresh_from_db()
    assert order.refunded_price == Decimal("4.00")


@pytest.mark.django_db
def test_retrying_a_failed_duplicate_refund_refunds_the_duplicate_payment(client):
    order = paid_through_sandbox(user_bid="u1")
    paying = SandboxAttempt.objects.get(order_bid=order.order_bid)
    duplicate = SandboxAttempt.objects.create(
        order_bid=order.order_bid, user_bid=order.user_bid, amount=paying.amount,
        currency=paying.currency, status=AttemptStatus.PAID, payment_id="sbx_duplicate",
        provider_state="succeeded",
    )  # fmt: skip
    failed = Refund.objects.create(
        order=order, payment_channel="sandbox", attempt_bid=duplicate.attempt_bid,
        amount=order.paid_price, currency="cny", reason="duplicate payment",
        status=RefundStatus.FAILED, duplicate_payment=True,
    )  # fmt: skip
    client.force_login(agent("refunder", "add_refund", "view_refund"))
    client.post(REFUNDS, {"action": "retry_selected", "_selected_action": [failed.pk]})
    again = Refund.objects.exclude(pk=failed.pk).get()
    assert again.duplicate_payment and again.attempt_bid == duplicate.attempt_bid
    assert again.status == RefundStatus.SUCCEEDED
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.refunded_price == 0
    duplicate.refresh_from_db()
    assert [r["amount"] for r in duplicate.provider_refunds] == [paying.amount]


@pytest.mark.django_db
def test_reapply_a_failed_inbox_event(client):
    order = paid_through_sandbox(user_bid="u1")
    row = WebhookEvent.objects.get()
    WebhookEvent.objects.filter(pk=row.pk).update(status=InboxStatus.FAILED)
    user = StaffFactory(username="admin")
    client.force_login(user)
    response = client.post(INBOX, {"action": "reapply_selected", "_selected_action": [row.pk]})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.status == InboxStatus.APPLIED and row.attempts == 2
    assert OrderEvent.objects.filter(order=order, actor=user, kind="note").exists()
    assert log_entries(row).filter(user=user).exists()


@pytest.mark.django_db
def test_an_approvals_page_offers_approve_and_reject_to_a_lead_only(client, threshold):
    order = paid_through_sandbox(user_bid="u1")
    client.force_login(agent("asker", "add_refund"))
    refund(client, order, "15.00")
    page_url = reverse("admin:orders_refundapproval_change", args=[RefundApproval.objects.get().pk])
    assert "Approve…" not in client.get(page_url).content.decode()
    client.force_login(agent("lead", "add_refund", "change_refundapproval"))
    page = client.get(page_url).content.decode()
    assert "Approve…" in page and "Reject…" in page
    assert "CN¥15.00" in page and "/admin/auth/user/" not in page  # names, not links


@pytest.mark.django_db
def test_a_refund_confirmation_sent_twice_refunds_once(client):
    order = paid_through_sandbox(user_bid="u1")
    client.force_login(agent("refunder", "add_refund"))
    page = refund(client, order, "3.00", confirm=False).content.decode()
    assert 'name="refundable_seen" value="19.90"' in page  # what the page showed
    confirmed = {"amount": "3.00", "reason": "r", "confirm": "yes", "refundable_seen": "19.90"}
    assert client.post(refund_url(order), confirmed).status_code == 302
    again = client.post(refund_url(order), confirmed)
    assert again.status_code == 200 and "changed since" in again.content.decode()
    assert Refund.objects.filter(order=order).count() == 1
    order.refresh_from_db()
    assert order.refunded_price == Decimal("3.00")
