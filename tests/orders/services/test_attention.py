"""Needs attention: reconciliation gives up after a bounded number of tries and lists
what it could not settle for staff, who retry or resolve it; a failed refund is listed
and a staff retry closes it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from orders import services
from orders.models import Attention, AttentionKind, AttentionStatus, Refund, RefundStatus
from orders.services import reconcile
from orders.services import staff as staff_services
from payments.models import SandboxAttempt
from payments.providers.base import ProviderUnavailable
from payments.tasks import webhook_deliver
from tests.factories import StaffFactory
from tests.orders.services.helpers import SandboxProvider, refund_event
from tests.sandbox import paid_through_sandbox

pytestmark = pytest.mark.usefixtures("sandbox_channel")


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
    staff_services.attention_retry(attention=row, actor=staff)  # the provider answers again
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
        staff_services.attention_resolve(attention=row, actor=staff, note=" ")
    assert getattr(refused.value, "code", "") == "note_required"
    staff_services.attention_resolve(attention=row, actor=staff, note="refunded by bank transfer")
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
        mock.patch.object(reconcile, "refund_submit"),
    ):
        services.payments_reconcile(older_than_seconds=60)
    row = Attention.objects.get(subject_bid=refund.refund_bid)
    assert row.status == AttentionStatus.OPEN and "RECONCILE_MAX_PENDING_HOURS" in row.reason


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
    webhook_deliver(channel="sandbox", body=body, headers=headers)
    listed = Attention.objects.get(kind=AttentionKind.REFUND_FAILED)
    assert listed.status == AttentionStatus.OPEN and "5.00 CNY failed" in listed.reason
    after = staff_services.attention_retry(attention=listed, actor=StaffFactory())
    assert after.status == AttentionStatus.RESOLVED and "asked for again" in after.note
    assert Refund.objects.filter(status=RefundStatus.SUCCEEDED).count() == 1
