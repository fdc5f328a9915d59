"""The support console's "Needs attention" list: money the service could not settle on
its own (reconciliation gave up, a refund failed after succeeding, a second purchase
kept for staff). Staff retry a row, or resolve it with a note; both go on the order's
history and the admin log. A staff account linked to creators sees only the rows of their
orders."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from orders.admin.scoping import CreatorScopedAdminMixin
from orders.models import Attention, AttentionStatus, Order
from orders.services import staff
from payments_project.admin_utils import (
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    admin_change_url,
    fixed_values_filter,
    link,
)
from payments_project.errors import ServiceError

ChannelFilter = fixed_values_filter("channel", "channel", ("pingxx", "stripe", "sandbox"))


class NoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="What was done (refunded by hand, confirmed with the provider...).",
    )


@admin.register(Attention)
class AttentionAdmin(
    CreatorScopedAdminMixin, LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    scope_prefix = "order__"
    list_display = (
        "pk",
        "status",
        "kind",
        "subject",
        "order_link",
        "channel",
        "tries",
        "reason",
        "updated_at",
    )
    list_select_related = ("order",)
    list_filter = ("status", "kind", ChannelFilter)
    search_fields = ("=subject_bid", "=order__order_bid")
    ordering = ("-updated_at", "-id")
    sortable_by = ()
    fields = (
        "status",
        "kind",
        "subject",
        "order_link",
        "channel",
        "reason",
        "tries",
        "last_answer",
        "note",
        "resolved_by",
        "resolved_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("subject", "order_link")
    actions = ("retry_selected", "resolve_selected")

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or self.has_manage_permission(request)

    def has_manage_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("orders.add_refund")

    @admin.display(description="subject")
    def subject(self, row: Attention) -> str:
        return f"{row.subject_kind} {row.subject_bid}"

    @admin.display(description="order")
    def order_link(self, row: Attention) -> str:
        if row.order is None:
            return "-"
        return link(admin_change_url(Order, row.order_id), row.order.order_bid)

    @admin.action(description="Retry the selected rows now", permissions=["manage"])
    def retry_selected(self, request, queryset):
        for row in queryset.exclude(status=AttentionStatus.RESOLVED)[:50]:
            try:
                after = staff.attention_retry(attention=row, actor=request.user)
            except ServiceError as exc:
                message = f"retry failed: {exc.message}"
                level = messages.ERROR
            else:
                settled = after.status == AttentionStatus.RESOLVED
                message = "settled" if settled else f"not settled yet: {after.last_answer}"
                level = messages.SUCCESS if settled else messages.WARNING
            self.log_change(request, row, f"Retry: {message}")
            self.message_user(request, f"{row}: {message}", level)

    @admin.action(description="Resolve the selected rows with a note", permissions=["manage"])
    def resolve_selected(self, request, queryset):
        form = NoteForm(request.POST if "note" in request.POST else None)
        if form.is_bound and form.is_valid():
            for row in queryset.exclude(status=AttentionStatus.RESOLVED)[:50]:
                staff.attention_resolve(
                    attention=row, actor=request.user, note=form.cleaned_data["note"]
                )
                self.log_change(request, row, f"Resolved: {form.cleaned_data['note']}")
                self.message_user(request, f"{row}: resolved", messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/orders/attention_resolve.html",
            {
                **self.admin_site.each_context(request),
                "title": "Resolve what needs attention",
                "rows": queryset[:50],
                "form": form,
                "opts": self.model._meta,
                "action": "resolve_selected",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )
