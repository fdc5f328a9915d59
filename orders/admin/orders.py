"""Orders (read-only): the list, its search (``orders.admin.search``) and CSV export
(``orders.admin.exports``), and the order's page with its history, refunds and payment
attempts. The support console's views come from ``orders.admin.console``; a staff
account linked to creators sees only their orders (``orders.admin.scoping``).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from orders.admin.console import SupportConsoleMixin
from orders.admin.exports import CsvExportMixin, currency_code
from orders.admin.scoping import CreatorScopedAdminMixin
from orders.admin.search import ORDER_SEARCH_HELP, order_search
from orders.models import (
    ApprovalStatus,
    Order,
    OrderEvent,
    OrderStatus,
    Product,
    Refund,
    RefundApproval,
)
from orders.selectors import (
    account_label,
    accounts_by_user_bid,
    order_attempts,
    order_price_lines,
    order_refundable_amount,
    orders_with_paid_at,
    product_names,
)
from payments.models import (
    NATIVE_ATTEMPTS,
    PingxxOrder,
    SandboxAttempt,
    StripeOrder,
    WebhookEvent,
)
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
)

# Attempts shown on an order's page; the rest are one click away in the attempts list.
ATTEMPTS_SHOWN = 20
PaymentChannelFilter = fixed_values_filter("payment_channel", "payment channel", PAYMENT_CHANNELS)


class RefundInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    fields = (
        "refund_bid",
        "amount_display",
        "status",
        "payment_channel",
        "provider_refund_id",
        "reason",
        "requested_by_name",
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

    def has_view_permission(self, request, obj=None) -> bool:
        """Whoever may see the order sees its refunds."""
        return request.user.has_perm("orders.view_order")

    @admin.display(description="amount")
    def amount_display(self, refund: Refund) -> str:
        return money(refund.amount, refund.currency)

    @admin.display(description="requested by")
    def requested_by_name(self, refund: Refund) -> str:
        """The staff member's name (not a link: support staff cannot open accounts)."""
        return refund.requested_by.get_username() if refund.requested_by_id else EMPTY


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

    def has_view_permission(self, request, obj=None) -> bool:
        """Whoever may see the order sees its history."""
        return request.user.has_perm("orders.view_order")

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


@admin.register(Order)
class OrderAdmin(
    CsvExportMixin,
    CreatorScopedAdminMixin,
    SupportConsoleMixin,
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    admin.ModelAdmin,
):
    # Whose order and which course at a glance: the buyer's e-mail and the course's
    # name, read for the whole page in three queries (OrderChangeList); the ids are
    # searchable and on the order's page.
    list_display = (
        "order_bid",
        "buyer",
        "course",
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
    # Shows the search box; get_search_results decides what a term matches, every
    # match through an index (orders.admin.search).
    search_fields = ("=order_bid", "=user_bid", "=product_bid")
    search_help_text = ORDER_SEARCH_HELP
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
                    "buyer_account",
                    "product_link",
                    "status_label",
                    "payment_channel",
                    "deleted",
                )
            },
        ),
        (
            "Money",
            {
                "fields": (
                    "currency",
                    "price_lines",
                    "payable",
                    "paid",
                    "refunded",
                    "awaiting_approval",
                    "refundable",
                )
            },
        ),
        (
            "Payment attempts",
            {
                "fields": (
                    "pingxx_attempts",
                    "stripe_attempts",
                    "sandbox_attempts",
                    "native_attempts",
                    "inbox_events",
                )
            },
        ),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = (
        "buyer_account",
        "awaiting_approval",
        "product_link",
        "status_label",
        "price_lines",
        "payable",
        "paid",
        "refunded",
        "refundable",
        "pingxx_attempts",
        "stripe_attempts",
        "sandbox_attempts",
        "native_attempts",
        "inbox_events",
    )

    export_filename = "orders"
    export_header = (
        "order_bid",
        "user_bid",
        "creator_bid",
        "product_bid",
        "product_title",
        "status_code",
        "status",
        "payment_channel",
        "currency",
        "list_price",
        "discount",
        "amount_due",
        "paid",
        "refunded",
        "created_at",
        "paid_at",
    )

    def get_changelist(self, request, **kwargs):
        return OrderChangeList

    def get_fieldsets(self, request, obj=None):
        """The attempts of the channels the order used, not an empty row per channel."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        used = {attempt["payment_channel"] for attempt in order_attempts(obj)}
        used.add(obj.payment_channel)
        shown = {
            "pingxx_attempts": "pingxx" in used,
            "stripe_attempts": "stripe" in used,
            "sandbox_attempts": "sandbox" in used,
            "native_attempts": bool(used & set(NATIVE_ATTEMPTS)),
        }
        return [
            (name, {**options, "fields": [f for f in options["fields"] if shown.get(f, True)]})
            for name, options in fieldsets
        ]

    def get_search_results(self, request, queryset, search_term):
        condition = order_search(search_term, queryset)
        return (queryset if condition is None else queryset.filter(condition)), False

    def export_queryset(self, queryset):
        return orders_with_paid_at(queryset)

    def export_rows(self, chunk: list[Order]):
        titles = product_names(order.product_bid for order in chunk)
        for order in chunk:
            yield (
                order.order_bid,
                order.user_bid,
                order.creator_bid,
                order.product_bid,
                titles.get(order.product_bid, ""),
                order.status,
                order.status_name,
                order.payment_channel,
                currency_code(order.currency),
                order.payable_price,
                order.discount_price,
                order.due_price,
                order.paid_price,
                order.refunded_price,
                order.created_at,
                order.paid_at,
            )

    @admin.display(description="status")
    def status_label(self, order: Order) -> str:
        return label_with_code(order)

    @admin.display(description="buyer")
    def buyer(self, order: Order) -> str:
        return getattr(order, "buyer_label", "") or order.user_bid

    @admin.display(description="course")
    def course(self, order: Order) -> str:
        return getattr(order, "course_name", "") or order.product_bid

    @admin.display(description="buyer")
    def buyer_account(self, order: Order) -> str:
        """The platform's user id, and the account behind it as staff recognise it."""
        account = accounts_by_user_bid([order.user_bid]).get(order.user_bid)
        if account is None:
            return f"user {order.user_bid} (no account here)"
        name = account.get_username()
        email = f" <{account.email}>" if account.email else ""
        return f"{name}{email}, user {order.user_bid}"

    @admin.display(description="awaiting approval")
    def awaiting_approval(self, order: Order) -> str:
        """Refunds asked for above the threshold, waiting for a support lead."""
        awaiting = list(
            RefundApproval.objects.filter(order=order, status=ApprovalStatus.AWAITING).order_by(
                "id"
            )
        )
        if not awaiting:
            return EMPTY
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a>: {}',
            (
                (
                    admin_change_url(RefundApproval, approval.pk),
                    money(approval.amount, approval.currency),
                    approval.reason,
                )
                for approval in awaiting
            ),
        )

    @admin.display(description="payable")
    def payable(self, order: Order) -> str:
        """What the buyer pays: after discounts (the price lines show the list price)."""
        return money(order.due_price, order.currency)

    @admin.display(description="paid")
    def paid(self, order: Order) -> str:
        return money(order.paid_price, order.currency)

    @admin.display(description="refunded")
    def refunded(self, order: Order) -> str:
        return money(order.refunded_price, order.currency)

    @admin.display(description="refundable")
    def refundable(self, order: Order) -> str:
        return money(order_refundable_amount(order), order.currency)

    @admin.display(description="price lines")
    def price_lines(self, order: Order) -> str:
        """The list price, each promotion and coupon it took (negative), the amount due."""
        rows = [
            (
                line["label"] if line["kind"] == "price" else f"{line['kind']}: {line['label']}",
                money(line["amount"], order.currency),
            )
            for line in order_price_lines(order)
        ]
        return html_table(
            ("line", "amount"), [*rows, ("Amount due", money(order.due_price, order.currency))]
        )

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

    @admin.display(description="Alipay / WeChat Pay attempts")
    def native_attempts(self, order: Order) -> str:
        model = NATIVE_ATTEMPTS.get(order.payment_channel)
        return EMPTY if model is None else _attempts_table(model, order)

    @admin.display(description="webhook inbox")
    def inbox_events(self, order: Order) -> str:
        return link(
            admin_changelist_url(WebhookEvent, order_bid=order.order_bid),
            "events received for this order",
        )


class OrderChangeList(ChangeList):
    """The page's orders with their buyer's e-mail and their course's name: three
    queries a page, whatever its size."""

    def get_results(self, request):
        super().get_results(request)
        orders = list(self.result_list)
        accounts = accounts_by_user_bid(order.user_bid for order in orders)
        names = product_names(order.product_bid for order in orders)
        for order in orders:
            order.buyer_label = account_label(accounts.get(order.user_bid))
            order.course_name = names.get(order.product_bid, "")


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
