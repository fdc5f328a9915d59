"""Admin for products (editable), orders and refunds (read-only).

Orders and refunds change only through the services, which check transitions, lock
rows and write audit events; here support staff look them up.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html

from orders.models import Order, OrderEvent, Product, Refund
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
    fields = ("created_at", "kind", "from_status", "to_status", "message", "source", "actor")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("id",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


@admin.register(Order)
class OrderAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
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
