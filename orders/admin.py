"""Admin for products (editable), orders and refunds (read-only), and the support
console: refunds (with approval above a threshold), sync, retry, mark paid by hand and
a dashboard.

Orders and refunds change only through the services (orders.services and
orders.support), which check transitions, lock rows and write audit events; every
console action also leaves an admin log entry.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from orders import dashboard, services, support
from orders.errors import RefundExceedsRefundable
from orders.models import (
    ApprovalStatus,
    Order,
    OrderEvent,
    OrderStatus,
    Product,
    Refund,
    RefundApproval,
)
from payments.models import PingxxOrder, SandboxAttempt, StripeOrder, WebhookEvent
from payments_project.admin_utils import (
    EMPTY,
    PAYMENT_CHANNELS,
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    admin_change_url,
    admin_changelist_url,
    display,
    fixed_values_filter,
    html_table,
    label_with_code,
    link,
    minor_money,
    money,
    pretty_json,
)
from payments_project.errors import ServiceError

# Attempts shown on an order's page; the rest are one click away in the attempts list.
ATTEMPTS_SHOWN = 20

# Provider ids looked up when an order search names one, at most this many orders.
PROVIDER_ID_MATCHES = 100

PaymentChannelFilter = fixed_values_filter("payment_channel", "payment channel", PAYMENT_CHANNELS)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "product_bid", "price_display", "active", "updated_at", "orders_link")
    list_filter = ("active",)
    search_fields = ("=product_bid", "name")
    search_help_text = "Exact product id, or part of the name."
    ordering = ("name",)
    fields = (
        "product_bid",
        "name",
        "description",
        "price",
        "currency",
        "active",
        "orders_link",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request, obj=None):
        readonly = ("orders_link", "created_at", "updated_at")
        # Orders carry the product's bid; changing it would orphan them.
        return ("product_bid", *readonly) if obj is not None else readonly

    def has_delete_permission(self, request, obj=None) -> bool:
        # Orders point at products by bid; a product leaves the shop by being deactivated.
        return False

    @admin.display(description="price", ordering="price")
    def price_display(self, product: Product) -> str:
        return money(product.price, product.currency)

    @admin.display(description="orders")
    def orders_link(self, product: Product) -> str:
        if product.pk is None:
            return EMPTY
        return link(admin_changelist_url(Order, product_bid=product.product_bid), "orders")


class RefundInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    fields = (
        "refund_bid",
        "amount_display",
        "status",
        "payment_channel",
        "provider_refund_id",
        "reason",
        "requested_by",
        "created_at",
        "settled_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-id",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("requested_by")

    @admin.display(description="amount")
    def amount_display(self, refund: Refund) -> str:
        return money(refund.amount, refund.currency)


class OrderEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The order's history: every status change, attempt, provider event and refund."""

    model = OrderEvent
    verbose_name = "history event"
    verbose_name_plural = "history"
    fields = ("created_at", "kind", "status_change", "message", "who")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("id",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description="status")
    def status_change(self, event: OrderEvent) -> str:
        if event.to_status is None:
            return EMPTY
        before = OrderStatus(event.from_status).label if event.from_status else EMPTY
        return f"{before} -> {OrderStatus(event.to_status).label}"

    @admin.display(description="who")
    def who(self, event: OrderEvent) -> str:
        """The staff user or customer, and what acted (admin, api, channel:event id)."""
        actor = event.actor.get_username() if event.actor_id else ""
        return " / ".join(part for part in (actor, event.source) if part) or EMPTY


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="In major units of the order's currency; by default all that is refundable.",
    )
    reason = forms.CharField(max_length=255, help_text="Kept with the refund and in the history.")


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
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_refund": self.has_refund_permission(request),
            "can_manage": self.has_manage_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "dashboard_url": _url("dashboard")}
        return super().changelist_view(request, extra_context)

    # ---- views ----

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
        order = get_object_or_404(Order, pk=object_id)
        refundable = services.order_refundable_now(order)
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
            result = support.refund_request_staff(
                order=order, amount=amount, reason=reason, actor=request.user
            )
        except RefundExceedsRefundable as exc:
            form.add_error("amount", exc.message)
            return self._refund_page(request, order, form, services.order_refundable_now(order))
        except ServiceError as exc:
            self.log_change(request, order, f"Refund of {amount} failed: {exc.message}")
            self.message_user(request, f"Refund not made: {exc.message}", messages.ERROR)
            return self._order_page(order)
        if isinstance(result, RefundApproval):
            message = (
                f"Refund of {amount} {order.currency.upper()} awaits a second staff "
                f"member's approval (approval {result.pk})."
            )
        else:
            message = f"Refund {result.refund_bid} of {amount} {order.currency.upper()}: " + (
                result.status
            )
        self.log_change(request, order, message)
        self.message_user(request, message, messages.SUCCESS)
        return self._order_page(order)

    def _refund_page(self, request, order, form, refundable, *, confirm=False):
        amount = form.cleaned_data.get("amount") if confirm else None
        return self._render(
            request,
            order,
            "refund_form.html",
            title=f"Refund order {order.order_bid}",
            form=form,
            confirm=confirm,
            refundable=money(refundable, order.currency),
            amount=money(amount, order.currency) if amount is not None else "",
            needs_approval=confirm and support.needs_approval(order, amount),
            threshold=support.approval_threshold_display(order),
        )

    def mark_paid_view(self, request, object_id):
        self._require(self.has_manage_permission(request))
        order = get_object_or_404(Order, pk=object_id)
        form = ReasonForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                support.order_mark_paid_by_hand(
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
            payable=money(order.payable_price, order.currency),
        )

    def sync_view(self, request, object_id):
        self._require(self.has_manage_permission(request))
        order = get_object_or_404(Order, pk=object_id)
        if request.method == "POST":
            self._sync(request, order)
        return self._order_page(order)

    def _sync(self, request, order: Order) -> None:
        try:
            synced = support.order_sync_staff(order=order, actor=request.user)
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


@admin.register(Order)
class OrderAdmin(SupportConsoleMixin, LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "order_bid",
        "user_bid",
        "product_bid",
        "status_label",
        "payment_channel",
        "payable",
        "paid",
        "refunded",
        "created_at",
    )
    list_filter = (
        "status",
        PaymentChannelFilter,
        ("created_at", admin.DateFieldListFilter),
        "deleted",
    )
    # Exact matches only ('=' is iexact, LIKE without wildcards on MySQL): each id
    # column has its own index. get_search_results adds provider ids.
    search_fields = ("=order_bid", "=user_bid", "=product_bid")
    search_help_text = (
        "Exact order, user or product id, or a Ping++ charge / transaction number or "
        "Stripe PaymentIntent / Checkout Session / charge id of one of its attempts."
    )
    # The primary key: the newest orders first without a sort. No date_hierarchy: it
    # runs DISTINCT date queries over the whole table.
    ordering = ("-id",)
    sortable_by = ("order_bid", "created_at")  # both indexed
    inlines = (OrderEventInline, RefundInline)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "order_bid",
                    "user_bid",
                    "product_link",
                    "status_label",
                    "payment_channel",
                    "deleted",
                )
            },
        ),
        (
            "Money",
            {"fields": ("currency", "payable", "paid", "refunded", "refundable")},
        ),
        (
            "Payment attempts",
            {
                "fields": (
                    "pingxx_attempts",
                    "stripe_attempts",
                    "sandbox_attempts",
                    "inbox_events",
                )
            },
        ),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = (
        "product_link",
        "status_label",
        "payable",
        "paid",
        "refunded",
        "refundable",
        "pingxx_attempts",
        "stripe_attempts",
        "sandbox_attempts",
        "inbox_events",
    )

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term and not term.split()[1:]:
            order_bids = _order_bids_for_provider_id(term)
            if order_bids:
                results = results | queryset.filter(order_bid__in=order_bids)
        return results, may_have_duplicates

    @admin.display(description="status")
    def status_label(self, order: Order) -> str:
        return label_with_code(order)

    @admin.display(description="payable")
    def payable(self, order: Order) -> str:
        return money(order.payable_price, order.currency)

    @admin.display(description="paid")
    def paid(self, order: Order) -> str:
        return money(order.paid_price, order.currency)

    @admin.display(description="refunded")
    def refunded(self, order: Order) -> str:
        return money(order.refunded_price, order.currency)

    @admin.display(description="refundable")
    def refundable(self, order: Order) -> str:
        return money(order.refundable_price, order.currency)

    @admin.display(description="product")
    def product_link(self, order: Order) -> str:
        product = Product.objects.filter(product_bid=order.product_bid).only("pk", "name").first()
        if product is None:
            return order.product_bid
        return link(admin_change_url(Product, product.pk), f"{product.name} ({order.product_bid})")

    @admin.display(description="Ping++ attempts")
    def pingxx_attempts(self, order: Order) -> str:
        return _attempts_table(PingxxOrder, order)

    @admin.display(description="Stripe attempts")
    def stripe_attempts(self, order: Order) -> str:
        return _attempts_table(StripeOrder, order)

    @admin.display(description="Sandbox attempts")
    def sandbox_attempts(self, order: Order) -> str:
        return _attempts_table(SandboxAttempt, order)

    @admin.display(description="webhook inbox")
    def inbox_events(self, order: Order) -> str:
        return link(
            admin_changelist_url(WebhookEvent, order_bid=order.order_bid),
            "events received for this order",
        )


@admin.register(Refund)
class RefundAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
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
    search_fields = ("=refund_bid", "=order__order_bid", "=order__user_bid", "=provider_refund_id")
    search_help_text = "Exact refund id, order id, user id or provider refund id."
    ordering = ("-id",)
    sortable_by = ()
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
                    "requested_by",
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
                result = support.refund_retry(refund=refund, actor=request.user)
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
class RefundApprovalAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Refunds above the threshold, approved or rejected by a second staff member."""

    list_display = (
        "pk",
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
    fields = (*list_display[1:], "decided_at", "note")
    readonly_fields = ("order_link", "amount_display")
    actions = ("approve_selected", "reject_selected")

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

    @admin.action(description="Approve the selected refunds", permissions=["refund"])
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject the selected refunds", permissions=["refund"])
    def reject_selected(self, request, queryset):
        self._decide(request, queryset, approve=False)

    def _decide(self, request, queryset, *, approve: bool) -> None:
        awaiting = queryset.filter(status=ApprovalStatus.AWAITING).select_related("order")
        for approval in awaiting[:50]:
            try:
                if approve:
                    refund = support.refund_approve(approval=approval, actor=request.user)
                    message = f"Approved: refund {refund.refund_bid} {refund.status}"
                else:
                    support.refund_reject(approval=approval, actor=request.user)
                    message = "Rejected"
            except ServiceError as exc:
                message = f"{'Approval' if approve else 'Rejection'} failed: {exc.message}"
                self.log_change(request, approval, message)
                self.message_user(request, f"{approval}: {exc.message}", messages.ERROR)
                continue
            self.log_change(request, approval, message)
            self.log_change(request, approval.order, f"{approval}: {message}")
            self.message_user(request, f"{approval}: {message}", messages.SUCCESS)


def _attempts_table(model, order: Order) -> str:
    """The order's latest attempts of one channel: one query, whatever their number."""
    attempts = list(
        model.objects.filter(order_bid=order.order_bid).order_by("-id")[: ATTEMPTS_SHOWN + 1]
    )
    table = html_table(
        ("attempt", "method", "provider id", "amount", "status", "failure", "created"),
        (
            (
                link(admin_change_url(model, attempt.pk), attempt.attempt_bid),
                attempt.method_name,
                attempt.provider_payment_id or EMPTY,
                minor_money(attempt.amount, attempt.currency),
                label_with_code(attempt),
                attempt.failure_text or EMPTY,
                display(attempt.created_at),
            )
            for attempt in attempts[:ATTEMPTS_SHOWN]
        ),
    )
    return _with_list_link(table, model, order, more=len(attempts) > ATTEMPTS_SHOWN)


def _with_list_link(table: str, model, order: Order, *, more: bool) -> str:
    """The attempts table followed by a link to all the order's attempts in their list."""
    if table == EMPTY:
        return EMPTY
    caption = f"latest {ATTEMPTS_SHOWN} shown; see all" if more else "open in the list"
    url = admin_changelist_url(model, order_bid=order.order_bid)
    return format_html("{}<p>{}</p>", table, link(url, caption))


def _order_bids_for_provider_id(term: str) -> list[str]:
    """Orders whose Ping++ or Stripe attempt carries the provider id ``term``.

    One indexed lookup per table, bounded; the order search then filters on a list of
    order bids instead of OR-ing subqueries, which MySQL would run once per order row.
    """
    pingxx = PingxxOrder.objects.filter(
        Q(charge_id=term) | Q(transaction_no=term) | Q(pingxx_order_bid=term)
    ).values_list("order_bid", flat=True)[:PROVIDER_ID_MATCHES]
    stripe = StripeOrder.objects.filter(
        Q(payment_intent_id=term)
        | Q(checkout_session_id=term)
        | Q(latest_charge_id=term)
        | Q(stripe_order_bid=term)
    ).values_list("order_bid", flat=True)[:PROVIDER_ID_MATCHES]
    return [*pingxx, *stripe]


from orders import admin_attention  # noqa: E402, F401  (registers the Needs attention list)
