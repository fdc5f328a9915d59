"""The support console on the order admin: the refund form (with approval above a
threshold), mark paid by hand, sync with the provider, and the dashboard.

Every action goes through ``orders.services.staff`` (which checks transitions, locks
rows and writes the order's history) and also leaves an admin log entry. Each view
finds its order through the admin's queryset, so an account restricted to some
creators (``orders.admin.scoping``) gets 404 for any other order.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotFound, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from orders import dashboard
from orders.errors import RefundConfirmationStale, RefundExceedsRefundable
from orders.models import Order, RefundApproval
from orders.selectors import order_refundable_amount, staff_creator_scope
from orders.services import staff
from orders.services.refunds import refund_needs_approval
from payments_project.admin_utils import admin_change_url, money
from payments_project.errors import ServiceError


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="In major units of the order's currency; by default all that is refundable.",
    )
    reason = forms.CharField(max_length=255, help_text="Kept with the refund and in the history.")
    # What the confirmation page showed left to refund: the refund is made only if that
    # is still so once the order is locked (a confirmation sent twice refunds once).
    refundable_seen = forms.DecimalField(
        max_digits=10, decimal_places=2, required=False, widget=forms.HiddenInput
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=400, help_text="Kept in the order's history.")


class SupportConsoleMixin:
    """The order admin's console: refund form, mark paid, sync, dashboard."""

    change_form_template = "admin/orders/order/change_form.html"
    change_list_template = "admin/orders/order/change_list.html"
    actions = ("refund_selected", "sync_selected", "mark_paid_selected")

    # ---- permissions ----

    def has_refund_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("orders.add_refund")

    def has_manage_permission(self, request, obj=None) -> bool:
        """Sync and mark paid by hand: staff allowed to change orders."""
        return request.user.has_perm("orders.change_order")

    def _require(self, allowed: bool) -> None:
        if not allowed:
            raise PermissionDenied

    # ---- urls ----

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="orders_order_dashboard"),
            path("<path:object_id>/refund/", view(self.refund_view), name="orders_order_refund"),
            path(
                "<path:object_id>/mark-paid/",
                view(self.mark_paid_view),
                name="orders_order_mark_paid",
            ),
            path("<path:object_id>/sync/", view(self.sync_view), name="orders_order_sync"),
            path("by-bid/<str:order_bid>/", view(self.by_bid_view), name="orders_order_by_bid"),
            *super().get_urls(),
        ]

    def by_bid_view(self, request, order_bid):
        """An order's page by its business id (what other apps' pages link to)."""
        self._require(self.has_view_permission(request))
        orders = self.get_queryset(request).filter(order_bid=order_bid)
        pk = orders.values_list("pk", flat=True).first()
        if pk is None:
            return HttpResponseNotFound(f"No order {order_bid}.", content_type="text/plain")
        return HttpResponseRedirect(reverse("admin:orders_order_change", args=[pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The page's buttons: only the actions that apply to this order now (no
        *Refund* with nothing to refund, no *Mark paid* on a paid order)."""
        order = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            "can_refund": self.has_refund_permission(request)
            and order is not None
            and order_refundable_amount(order) > 0,
            "can_manage": self.has_manage_permission(request),
            "can_mark_paid": self.has_manage_permission(request)
            and order is not None
            and order.status in staff.MARK_PAID_FROM,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        unlimited = staff_creator_scope(request.user) is None
        dashboard_url = _url("dashboard") if unlimited else ""
        extra_context = {**(extra_context or {}), "dashboard_url": dashboard_url}
        return super().changelist_view(request, extra_context)

    # ---- views ----

    def _order_or_404(self, request, object_id) -> Order:
        """The order, if the staff user may see it (creator scope): else 404, as for an
        order that does not exist."""
        order = self.get_object(request, unquote(str(object_id)))
        if order is None:  # none, not theirs, or not an id at all
            raise Http404("No such order.")
        return order

    def _order_page(self, order: Order):
        return HttpResponseRedirect(admin_change_url(Order, order.pk))

    def _render(self, request, order: Order | None, template: str, **context):
        return TemplateResponse(
            request,
            f"admin/orders/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "order": order,
                "order_url": admin_change_url(Order, order.pk) if order else "",
                **context,
            },
        )

    def refund_view(self, request, object_id):
        self._require(self.has_refund_permission(request))
        order = self._order_or_404(request, object_id)
        refundable = order_refundable_amount(order)
        if request.method != "POST":
            form = RefundForm(initial={"amount": refundable})
            return self._refund_page(request, order, form, refundable)
        form = RefundForm(request.POST)
        if not form.is_valid():
            return self._refund_page(request, order, form, refundable)
        amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
        if "confirm" not in request.POST:
            return self._refund_page(request, order, form, refundable, confirm=True)
        try:
            result = staff.refund_request_staff(
                order=order,
                amount=amount,
                reason=reason,
                actor=request.user,
                expected_refundable=form.cleaned_data.get("refundable_seen"),
            )
        except (RefundExceedsRefundable, RefundConfirmationStale) as exc:
            form.add_error("amount", exc.message)
            return self._refund_page(request, order, form, order_refundable_amount(order))
        except ServiceError as exc:
            self.log_change(request, order, f"Refund of {amount} failed: {exc.message}")
            self.message_user(request, f"Refund not made: {exc.message}", messages.ERROR)
            return self._order_page(order)
        shown = money(amount, order.currency)
        if isinstance(result, RefundApproval):
            message = (
                f"Refund of {shown} awaits a support lead's approval (approval {result.pk}): "
                "nothing is sent to the provider until then."
            )
        else:
            message = f"Refund {result.refund_bid} of {shown}: {result.status}"
        self.log_change(request, order, message)
        self.message_user(request, message, messages.SUCCESS)
        return self._order_page(order)

    def _refund_page(self, request, order, form, refundable, *, confirm=False):
        amount = form.cleaned_data.get("amount") if confirm else None
        if confirm:
            form.data = {**form.data.dict(), "refundable_seen": str(refundable)}
        return self._render(
            request,
            order,
            "refund_form.html",
            title=f"Refund order {order.order_bid}",
            form=form,
            confirm=confirm,
            refundable=money(refundable, order.currency),
            paid=money(order.paid_price, order.currency),
            discounted=bool(order.discount_price),
            list_price=money(order.payable_price, order.currency),
            discount=money(order.discount_price, order.currency),
            amount=money(amount, order.currency) if amount is not None else "",
            needs_approval=confirm and refund_needs_approval(order, amount),
            threshold=staff.approval_threshold_display(order),
        )

    def mark_paid_view(self, request, object_id):
        self._require(self.has_manage_permission(request))
        order = self._order_or_404(request, object_id)
        form = ReasonForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                staff.order_mark_paid_by_hand(
                    order=order, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except ServiceError as exc:
                self.message_user(request, f"Not marked paid: {exc.message}", messages.ERROR)
                return self._order_page(order)
            message = f"Marked paid by hand: {form.cleaned_data['reason']}"
            self.log_change(request, order, message)
            self.message_user(request, message, messages.SUCCESS)
            return self._order_page(order)
        return self._render(
            request,
            order,
            "mark_paid_form.html",
            title=f"Mark order {order.order_bid} paid by hand",
            form=form,
            payable=money(order.due_price, order.currency),
        )

    def sync_view(self, request, object_id):
        self._require(self.has_manage_permission(request))
        order = self._order_or_404(request, object_id)
        if request.method == "POST":
            self._sync(request, order)
        return self._order_page(order)

    def _sync(self, request, order: Order) -> None:
        try:
            synced = staff.order_sync_staff(order=order, actor=request.user)
        except ServiceError as exc:
            self.log_change(request, order, f"Sync failed: {exc.message}")
            self.message_user(
                request, f"Order {order.order_bid}: sync failed: {exc.message}", messages.ERROR
            )
            return
        message = f"Synced with the provider: {synced.status_name}"
        self.log_change(request, order, message)
        self.message_user(request, f"Order {order.order_bid}: {message}", messages.SUCCESS)

    def dashboard_view(self, request):
        self._require(self.has_view_permission(request))
        if staff_creator_scope(request.user) is not None:
            raise Http404("Not found.")  # its figures are every creator's
        report = dashboard.build(request.GET)
        return self._render(request, None, "dashboard.html", title="Payments dashboard", **report)

    # ---- list actions ----

    @admin.action(description="Refund the selected order", permissions=["refund"])
    def refund_selected(self, request, queryset):
        return self._one_order_form(request, queryset, "refund")

    @admin.action(description="Mark the selected order paid by hand", permissions=["manage"])
    def mark_paid_selected(self, request, queryset):
        return self._one_order_form(request, queryset, "mark_paid")

    @admin.action(
        description="Sync the selected orders with their provider", permissions=["manage"]
    )
    def sync_selected(self, request, queryset):
        for order in queryset[:50]:
            self._sync(request, order)

    def _one_order_form(self, request, queryset, name: str):
        orders = list(queryset[:2])
        if len(orders) != 1:
            self.message_user(request, "Select exactly one order.", messages.WARNING)
            return None
        return HttpResponseRedirect(_url(name, orders[0].pk))


def _url(name: str, *args) -> str:
    return reverse(f"admin:orders_order_{name}", args=args)
