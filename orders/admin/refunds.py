"""Refunds (read-only, with a retry action, a search and a CSV export) and the refunds
awaiting a second staff member's approval (approve or reject). A staff account linked to
creators sees only the refunds and approvals of their orders (``orders.admin.scoping``).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse

from orders.admin.exports import CsvExportMixin, currency_code
from orders.admin.orders import PaymentChannelFilter
from orders.admin.scoping import CreatorScopedAdminMixin
from orders.admin.search import REFUND_SEARCH_HELP, refund_search
from orders.models import ApprovalStatus, Order, Refund, RefundApproval
from orders.selectors import product_names, scoped
from orders.services import staff
from payments.models import PingxxOrder, SandboxAttempt, StripeOrder
from payments_project.admin_utils import (
    EMPTY,
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    admin_change_url,
    admin_changelist_url,
    link,
    money,
    pretty_json,
    staff_name,
)
from payments_project.errors import ServiceError


@admin.register(Refund)
class RefundAdmin(
    CsvExportMixin,
    CreatorScopedAdminMixin,
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    admin.ModelAdmin,
):
    list_display = (
        "refund_bid",
        "order_link",
        "amount_display",
        "status",
        "payment_channel",
        "provider_refund_id",
        "requested_by",
        "created_at",
        "settled_at",
    )
    list_select_related = ("order", "requested_by")
    list_filter = ("status", PaymentChannelFilter, ("created_at", admin.DateFieldListFilter))
    # Shows the search box; get_search_results decides what a term matches.
    search_fields = ("=refund_bid", "=order__order_bid", "=order__user_bid", "=provider_refund_id")
    search_help_text = REFUND_SEARCH_HELP
    ordering = ("-id",)
    sortable_by = ()
    scope_prefix = "order__"
    export_filename = "refunds"
    export_header = (
        "refund_bid",
        "order_bid",
        "user_bid",
        "product_bid",
        "product_title",
        "status_code",
        "status",
        "payment_channel",
        "currency",
        "amount",
        "provider_refund_id",
        "reason",
        "requested_by",
        "created_at",
        "settled_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "refund_bid",
                    "order_link",
                    "amount_display",
                    "status",
                    "reason",
                    "requested_by_name",
                )
            },
        ),
        (
            "Provider",
            {
                "fields": (
                    "payment_channel",
                    "attempt_link",
                    "provider_refund_id",
                    "failure_code",
                    "failure_message",
                    "raw_pretty",
                )
            },
        ),
        ("Times", {"fields": ("created_at", "updated_at", "settled_at")}),
    )
    readonly_fields = ("order_link", "amount_display", "attempt_link", "raw_pretty")

    def get_search_results(self, request, queryset, search_term):
        orders = scoped(Order.objects.all(), request.user)
        condition = refund_search(search_term, orders)
        return (queryset if condition is None else queryset.filter(condition)), False

    def export_rows(self, chunk: list[Refund]):
        titles = product_names(refund.order.product_bid for refund in chunk)
        for refund in chunk:
            yield (
                refund.refund_bid,
                refund.order.order_bid,
                refund.order.user_bid,
                refund.order.product_bid,
                titles.get(refund.order.product_bid, ""),
                refund.status,
                refund.get_status_display(),
                refund.payment_channel,
                currency_code(refund.currency),
                refund.amount,
                refund.provider_refund_id or "",
                refund.reason,
                refund.requested_by.get_username() if refund.requested_by else "",
                refund.created_at,
                refund.settled_at,
            )

    @admin.display(description="order")
    def order_link(self, refund: Refund) -> str:
        return link(admin_change_url(Order, refund.order_id), refund.order.order_bid)

    @admin.display(description="amount")
    def amount_display(self, refund: Refund) -> str:
        return money(refund.amount, refund.currency)

    @admin.display(description="attempt")
    def attempt_link(self, refund: Refund) -> str:
        if not refund.attempt_bid:
            return EMPTY
        if refund.payment_channel == "pingxx":
            url = admin_changelist_url(PingxxOrder, pingxx_order_bid=refund.attempt_bid)
        elif refund.payment_channel == "stripe":
            url = admin_changelist_url(StripeOrder, stripe_order_bid=refund.attempt_bid)
        elif refund.payment_channel == "sandbox":
            url = admin_changelist_url(SandboxAttempt, attempt_bid=refund.attempt_bid)
        else:
            return refund.attempt_bid
        return link(url, refund.attempt_bid)

    @admin.display(description="requested by")
    def requested_by_name(self, refund: Refund) -> str:
        return staff_name(refund.requested_by)

    @admin.display(description="raw provider refund")
    def raw_pretty(self, refund: Refund) -> str:
        return pretty_json(refund.raw)

    actions = ("retry_selected",)

    def has_refund_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("orders.add_refund")

    @admin.action(
        description="Retry the selected failed or pending refunds", permissions=["refund"]
    )
    def retry_selected(self, request, queryset):
        for refund in queryset.select_related("order")[:50]:
            try:
                result = staff.refund_retry(refund=refund, actor=request.user)
            except ServiceError as exc:
                self.log_change(request, refund, f"Retry failed: {exc.message}")
                self.message_user(
                    request, f"Refund {refund.refund_bid}: {exc.message}", messages.ERROR
                )
                continue
            if isinstance(result, RefundApproval):
                message = f"Asked again; above the threshold, awaiting approval {result.pk}"
            else:
                message = f"Retried as {result.refund_bid}: {result.status}"
            self.log_change(request, refund, message)
            self.message_user(request, f"Refund {refund.refund_bid}: {message}", messages.SUCCESS)


@admin.register(RefundApproval)
class RefundApprovalAdmin(
    CreatorScopedAdminMixin, LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    """Refunds above the threshold, approved or rejected by a second staff member."""

    scope_prefix = "order__"
    list_display = (
        "number",
        "order_link",
        "amount_display",
        "status",
        "reason",
        "requested_by",
        "decided_by",
        "created_at",
        "refund",
    )
    list_select_related = ("order", "requested_by", "decided_by", "refund")
    list_filter = ("status",)
    search_fields = ("=order__order_bid",)
    ordering = ("-id",)
    sortable_by = ()
    fields = (
        "order_link",
        "amount_display",
        "status",
        "reason",
        "requested_by_name",
        "decided_by_name",
        "created_at",
        "refund",
        "decided_at",
        "note",
    )
    readonly_fields = ("order_link", "amount_display", "requested_by_name", "decided_by_name")
    actions = ("approve_selected", "reject_selected")
    change_form_template = "admin/orders/refundapproval/change_form.html"

    @admin.display(description="#", ordering="pk")
    def number(self, approval: RefundApproval) -> int:
        return approval.pk

    @admin.display(description="requested by")
    def requested_by_name(self, approval: RefundApproval) -> str:
        return staff_name(approval.requested_by)

    @admin.display(description="decided by")
    def decided_by_name(self, approval: RefundApproval) -> str:
        return staff_name(approval.decided_by)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_decide": self.has_approve_permission(request),
            "actions_url": reverse("admin:orders_refundapproval_changelist"),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or self.has_refund_permission(request)

    def has_refund_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("orders.add_refund")

    @admin.display(description="order")
    def order_link(self, approval: RefundApproval) -> str:
        return link(admin_change_url(Order, approval.order_id), approval.order.order_bid)

    @admin.display(description="amount")
    def amount_display(self, approval: RefundApproval) -> str:
        return money(approval.amount, approval.currency)

    def has_approve_permission(self, request, obj=None) -> bool:
        """Deciding on a large refund: the *support lead* group's permission (and never
        on one's own request, which the service refuses)."""
        return request.user.has_perm("orders.change_refundapproval")

    @admin.action(description="Approve the selected refunds", permissions=["approve"])
    def approve_selected(self, request, queryset):
        return self._decide(request, queryset, approve=True)

    @admin.action(description="Reject the selected refunds", permissions=["approve"])
    def reject_selected(self, request, queryset):
        return self._decide(request, queryset, approve=False)

    def _decide(self, request, queryset, *, approve: bool):
        """First a page that shows what would be refunded (order, amount, what is left
        to refund, reason); then, once confirmed, the decisions."""
        awaiting = list(
            queryset.filter(status=ApprovalStatus.AWAITING).select_related("order", "requested_by")[
                :50
            ]
        )
        if not awaiting:
            self.message_user(request, "None of them awaits approval.", messages.WARNING)
            return None
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/orders/approval_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.model._meta,
                    "title": "Approve refunds?" if approve else "Reject refunds?",
                    "approve": approve,
                    "action": request.POST.get("action", ""),
                    "rows": [
                        {
                            "approval": approval,
                            "amount": money(approval.amount, approval.currency),
                            "paid": money(approval.order.paid_price, approval.currency),
                            "refunded": money(approval.order.refunded_price, approval.currency),
                            "requested_by": staff_name(approval.requested_by),
                            "order_url": admin_change_url(Order, approval.order_id),
                        }
                        for approval in awaiting
                    ],
                },
            )
        for approval in awaiting:
            try:
                if approve:
                    refund = staff.refund_approve(approval=approval, actor=request.user)
                    message = f"Approved: refund {refund.refund_bid} {refund.status}"
                else:
                    staff.refund_reject(approval=approval, actor=request.user)
                    message = "Rejected"
            except ServiceError as exc:
                message = f"{'Approval' if approve else 'Rejection'} failed: {exc.message}"
                self.log_change(request, approval, message)
                self.message_user(request, f"{approval}: {exc.message}", messages.ERROR)
                continue
            self.log_change(request, approval, message)
            self.log_change(request, approval.order, f"{approval}: {message}")
            self.message_user(request, f"{approval}: {message}", messages.SUCCESS)
        return None
