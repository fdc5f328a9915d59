"""Read-only admin for payment attempts and the webhook inbox.

Attempts and inbox events point at their order by ``order_bid`` (no foreign key, as in
the legacy tables). List pages link to the order list filtered on that bid, which costs
no query; a change page looks the order up once and links to it directly. A staff
account restricted to some creators' orders sees only their attempts and events
(``OrderBidScopedAdminMixin``, filled in by the orders app).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.urls import reverse

from payments import admin_integrations  # noqa: F401  (creators' merchant accounts)
from payments.models import (
    AlipayOrder,
    NativeAttempt,
    PingxxOrder,
    SandboxAttempt,
    StripeOrder,
    WebhookEvent,
    WechatpayOrder,
)
from payments.services import inbox_event_reapply
from payments_project.admin_utils import (
    EMPTY,
    PAYMENT_CHANNELS,
    LargeTableAdminMixin,
    OrderBidScopedAdminMixin,
    ReadOnlyAdminMixin,
    fixed_values_filter,
    label_with_code,
    link,
    minor_money,
    preformatted,
    pretty_json,
    pretty_or_raw,
)
from payments_project.db import parse_legacy_object
from payments_project.errors import ServiceError

# Ping++ channels: the legacy data's, then the rest of Ping++'s Alipay / WeChat / UnionPay.
PINGXX_CHANNELS = (
    "alipay_qr",
    "wx_pub_qr",
    "wx_pub",
    "wx_wap",
    "alipay",
    "alipay_wap",
    "alipay_pc_direct",
    "alipay_lite",
    "wx",
    "wx_lite",
    "upacp",
    "upacp_pc",
    "upacp_wap",
)


def order_list_link(order_bid: str) -> str:
    """A link to the order list filtered on ``order_bid``: no query, fit for list rows."""
    if not order_bid:
        return EMPTY
    url = reverse("admin:orders_order_changelist")
    return link(f"{url}?{urlencode({'order_bid': order_bid})}", order_bid)


def order_page_link(order_bid: str) -> str:
    """A link to the order's own page, through the order admin's page by business id
    (this app never reads the orders table)."""
    if not order_bid:
        return EMPTY
    return link(reverse("admin:orders_order_by_bid", args=[order_bid]), order_bid)


class AttemptAdmin(
    OrderBidScopedAdminMixin, LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    """What the Ping++ and Stripe attempt admins share."""

    ordering = ("-id",)
    # Only the primary key order is indexed for these lists.
    sortable_by = ()

    @admin.display(description="order")
    def order_link(self, attempt) -> str:
        return order_list_link(attempt.order_bid)

    @admin.display(description="order")
    def order_page(self, attempt) -> str:
        return order_page_link(attempt.order_bid)

    @admin.display(description="amount")
    def amount_display(self, attempt) -> str:
        return minor_money(attempt.amount, attempt.currency)

    @admin.display(description="status")
    def status_label(self, attempt) -> str:
        return label_with_code(attempt)


@admin.register(PingxxOrder)
class PingxxOrderAdmin(AttemptAdmin):
    list_display = (
        "pingxx_order_bid",
        "order_link",
        "user_bid",
        "channel",
        "charge_id",
        "amount_display",
        "status_label",
        "created_at",
    )
    list_filter = (
        "status",
        fixed_values_filter("channel", "channel", PINGXX_CHANNELS),
        ("created_at", admin.DateFieldListFilter),
        "deleted",
    )
    # Each column is indexed; '=' keeps the lookups exact.
    search_fields = (
        "=order_bid",
        "=user_bid",
        "=charge_id",
        "=pingxx_order_bid",
        "=transaction_no",
        "=refund_id",
    )
    search_help_text = (
        "Exact order id, user id, charge id, attempt id, transaction number or refund id."
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "pingxx_order_bid",
                    "order_page",
                    "user_bid",
                    "product_bid",
                    "status_label",
                    "amount_display",
                    "subject",
                    "body",
                    "client_ip",
                )
            },
        ),
        (
            "Ping++",
            {"fields": ("app_id", "channel", "transaction_no", "charge_id", "refund_id")},
        ),
        (
            "Outcome",
            {
                "fields": (
                    "failure_code",
                    "failure_msg",
                    "paid_at",
                    "refunded_at",
                    "closed_at",
                    "failed_at",
                )
            },
        ),
        ("Raw provider objects", {"fields": ("charge_pretty", "extra_pretty")}),
        ("Record", {"fields": ("deleted", "created_at", "updated_at")}),
    )
    readonly_fields = (
        "order_page",
        "status_label",
        "amount_display",
        "charge_pretty",
        "extra_pretty",
    )

    @admin.display(description="charge object")
    def charge_pretty(self, attempt: PingxxOrder) -> str:
        return pretty_or_raw(attempt.charge, attempt.charge_object)

    @admin.display(description="extra")
    def extra_pretty(self, attempt: PingxxOrder) -> str:
        return pretty_or_raw(parse_legacy_object(attempt.extra), attempt.extra)


@admin.register(StripeOrder)
class StripeOrderAdmin(AttemptAdmin):
    list_display = (
        "stripe_order_bid",
        "order_link",
        "user_bid",
        "payment_intent_id",
        "amount_display",
        "status_label",
        "created_at",
    )
    list_filter = ("status", ("created_at", admin.DateFieldListFilter), "deleted")
    search_fields = (
        "=order_bid",
        "=user_bid",
        "=payment_intent_id",
        "=checkout_session_id",
        "=latest_charge_id",
        "=stripe_order_bid",
    )
    search_help_text = (
        "Exact order id, user id, PaymentIntent id, Checkout Session id, charge id or attempt id."
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "stripe_order_bid",
                    "order_page",
                    "user_bid",
                    "product_bid",
                    "status_label",
                    "amount_display",
                )
            },
        ),
        (
            "Stripe",
            {
                "fields": (
                    "payment_intent_id",
                    "checkout_session_id",
                    "latest_charge_id",
                    "payment_method",
                    "receipt_url",
                    "failure_code",
                    "failure_message",
                )
            },
        ),
        (
            "Raw provider objects",
            {
                "fields": (
                    "metadata_pretty",
                    "payment_intent_pretty",
                    "checkout_session_pretty",
                )
            },
        ),
        ("Record", {"fields": ("deleted", "created_at", "updated_at")}),
    )
    readonly_fields = (
        "order_page",
        "status_label",
        "amount_display",
        "metadata_pretty",
        "payment_intent_pretty",
        "checkout_session_pretty",
    )

    @admin.display(description="metadata")
    def metadata_pretty(self, attempt: StripeOrder) -> str:
        return pretty_json(attempt.metadata)

    @admin.display(description="PaymentIntent")
    def payment_intent_pretty(self, attempt: StripeOrder) -> str:
        return pretty_json(attempt.payment_intent_object)

    @admin.display(description="Checkout Session")
    def checkout_session_pretty(self, attempt: StripeOrder) -> str:
        return pretty_json(attempt.checkout_session_object)


class NativeAttemptAdmin(AttemptAdmin):
    """Direct Alipay / WeChat Pay attempts (the platform's rows and this service's): shown,
    never edited; refunds and syncs are made from their order."""

    list_display = (
        "attempt_bid",
        "order_link",
        "user_bid",
        "channel",
        "transaction_id",
        "amount_display",
        "status_label",
        "raw_status",
        "created_at",
    )
    list_filter = ("status", ("created_at", admin.DateFieldListFilter), "deleted")
    search_fields = ("=order_bid", "=user_bid", "=transaction_id", "=provider_attempt_id")
    search_help_text = "Exact order id, user id, trade number or merchant order number."
    readonly_fields = (
        "order_page",
        "status_label",
        "amount_display",
        "request_pretty",
        "response_pretty",
        "notification_pretty",
        "metadata_pretty",
    )

    def get_fieldsets(self, request, obj=None):
        bid = self.model.attempt_bid_field
        return (
            (
                None,
                {
                    "description": "Refund or sync it from its order; the merchant "
                    "account it was made with is in its metadata "
                    "(payment_integration_bid, empty for the platform's).",
                    "fields": (
                        bid,
                        "order_page",
                        "user_bid",
                        "product_bid",
                        "status_label",
                        "raw_status",
                        "amount_display",
                    ),
                },
            ),
            (
                "Provider",
                {"fields": ("channel", "provider_attempt_id", "transaction_id", "creator_bid")},
            ),
            (
                "Raw provider objects",
                {
                    "fields": (
                        "request_pretty",
                        "response_pretty",
                        "notification_pretty",
                        "metadata_pretty",
                    )
                },
            ),
            ("Record", {"fields": ("deleted", "created_at", "updated_at")}),
        )

    @admin.display(description="attempt")
    def attempt_bid(self, attempt: NativeAttempt) -> str:
        return attempt.attempt_bid

    @admin.display(description="request")
    def request_pretty(self, attempt: NativeAttempt) -> str:
        return pretty_json(attempt.raw_request)

    @admin.display(description="response")
    def response_pretty(self, attempt: NativeAttempt) -> str:
        return pretty_json(attempt.raw_response)

    @admin.display(description="notification")
    def notification_pretty(self, attempt: NativeAttempt) -> str:
        return pretty_json(attempt.raw_notification)

    @admin.display(description="metadata")
    def metadata_pretty(self, attempt: NativeAttempt) -> str:
        return pretty_json(attempt.metadata)


@admin.register(AlipayOrder)
class AlipayOrderAdmin(NativeAttemptAdmin):
    pass


@admin.register(WechatpayOrder)
class WechatpayOrderAdmin(NativeAttemptAdmin):
    pass


@admin.register(SandboxAttempt)
class SandboxAttemptAdmin(AttemptAdmin):
    list_display = (
        "attempt_bid",
        "order_link",
        "user_bid",
        "payment_id",
        "amount_display",
        "status_label",
        "provider_state",
        "created_at",
    )
    list_filter = ("status", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=order_bid", "=user_bid", "=attempt_bid", "=payment_id")
    search_help_text = "Exact order id, user id, attempt id or sandbox payment id."
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "attempt_bid",
                    "order_page",
                    "user_bid",
                    "method",
                    "status_label",
                    "amount_display",
                    "payment_id",
                    "failure_code",
                    "failure_message",
                )
            },
        ),
        ("The sandbox's side", {"fields": ("provider_state", "provider_refunds_pretty")}),
        ("Raw", {"fields": ("raw_pretty", "created_at", "updated_at")}),
    )
    readonly_fields = (
        "order_page",
        "status_label",
        "amount_display",
        "provider_refunds_pretty",
        "raw_pretty",
    )

    @admin.display(description="refunds")
    def provider_refunds_pretty(self, attempt: SandboxAttempt) -> str:
        return pretty_json(attempt.provider_refunds)

    @admin.display(description="payment object")
    def raw_pretty(self, attempt: SandboxAttempt) -> str:
        return pretty_json(attempt.raw)


@admin.register(WebhookEvent)
class WebhookEventAdmin(
    OrderBidScopedAdminMixin, LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    list_display = (
        "__str__",
        "event_type",
        "status",
        "signature_status",
        "order_link",
        "object_id",
        "attempts",
        "repeats",
        "received_at",
        "processed_at",
    )
    list_filter = (
        fixed_values_filter("channel", "channel", PAYMENT_CHANNELS),
        "status",
        "signature_status",
        "livemode",
        ("received_at", admin.DateFieldListFilter),
    )
    search_fields = ("=event_id", "=order_bid", "=object_id")
    search_help_text = "Exact event id, order id or provider object id (charge, refund)."
    ordering = ("-id",)
    sortable_by = ("received_at",)  # indexed
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "channel",
                    "event_id",
                    "event_type",
                    "livemode",
                    "order_page",
                    "object_id",
                )
            },
        ),
        (
            "Processing",
            {
                "fields": (
                    "signature_status",
                    "status",
                    "rejection_code",
                    "attempts",
                    "last_error_pre",
                    "received_at",
                    "processed_at",
                    "repeats",
                    "last_seen_at",
                )
            },
        ),
        (
            "Delivery",
            {
                "fields": (
                    "remote_addr",
                    "headers_pretty",
                    "payload_pretty",
                    "body_bytes",
                    "digest",
                    "body_raw",
                )
            },
        ),
    )
    readonly_fields = (
        "order_page",
        "last_error_pre",
        "headers_pretty",
        "payload_pretty",
        "body_raw",
    )

    @admin.display(description="order")
    def order_link(self, event: WebhookEvent) -> str:
        return order_list_link(event.order_bid)

    @admin.display(description="order")
    def order_page(self, event: WebhookEvent) -> str:
        return order_page_link(event.order_bid)

    @admin.display(description="last error")
    def last_error_pre(self, event: WebhookEvent) -> str:
        return preformatted(event.last_error)

    @admin.display(description="headers")
    def headers_pretty(self, event: WebhookEvent) -> str:
        return pretty_json(event.headers)

    @admin.display(description="payload (parsed)")
    def payload_pretty(self, event: WebhookEvent) -> str:
        return pretty_json(event.payload)

    @admin.display(description="body (as received)")
    def body_raw(self, event: WebhookEvent) -> str:
        return preformatted(event.body)

    actions = ("reapply_selected",)

    def has_reapply_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("payments.change_webhookevent")

    @admin.action(
        description="Apply the selected received or failed events again",
        permissions=["reapply"],
    )
    def reapply_selected(self, request, queryset):
        for row in queryset[:50]:
            try:
                outcome = inbox_event_reapply(row=row, actor=request.user)
            except ServiceError as exc:
                self.log_change(request, row, f"Apply again failed: {exc.message}")
                self.message_user(request, f"{row}: {exc.message}", messages.ERROR)
                continue
            message = f"Applied again: {(outcome.event or row).status}" + (
                f" ({outcome.message})" if outcome.message else ""
            )
            self.log_change(request, row, message)
            level = messages.SUCCESS if outcome.http_status < 300 else messages.WARNING
            self.message_user(request, f"{row}: {message}", level)
