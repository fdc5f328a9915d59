"""Coupon codes and their uses: the read-only list (each code of a single-use batch,
each use of a code by an order) and the CSV export of batches' codes, streamed."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.contrib import admin
from django.http import StreamingHttpResponse
from django.urls import reverse

from payments_project.admin_utils import (
    EMPTY,
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    label_with_code,
    link,
    money,
)
from payments_project.db import Deleted
from promos.models import CouponBatch, CouponUsage, UsageType

# Batches offered by the uses list's batch filter (the chosen one is always offered).
BATCHES_OFFERED = 20
EXPORT_HEADER = (
    "coupon_bid",
    "batch",
    "code",
    "status",
    "order_bid",
    "user_bid",
    "amount_off",
    "currency",
    "created_at",
    "updated_at",
)
EXPORT_COLUMNS = (
    "code",
    "status",
    "order_bid",
    "user_bid",
    "discount_amount",
    "currency",
    "created_at",
    "updated_at",
)
USAGE_STATUS_LABELS = dict(CouponUsage._meta.get_field("status").flatchoices)


# ---- CSV export ----


class _Echo:
    """A file that hands back what is written to it, for csv.writer to stream."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    """A CSV cell; text a spreadsheet would read as a formula is quoted."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_rows(batches: Iterable[CouponBatch]) -> Iterator[tuple]:
    """The header, then per batch its shared code and a row per code row or use,
    read in chunks."""
    yield EXPORT_HEADER
    for batch in batches:
        head = (batch.coupon_bid, batch.name)
        if batch.usage_type != UsageType.SINGLE and batch.code:
            yield (
                *head,
                batch.code,
                "shared code",
                "",
                "",
                "",
                batch.currency,
                batch.created_at,
                "",
            )
        rows = (
            CouponUsage.objects.filter(coupon_bid=batch.coupon_bid, deleted=Deleted.ACTIVE)
            .order_by("id")
            .values_list(*EXPORT_COLUMNS)
            .iterator(chunk_size=2000)
        )
        for code, status, order_bid, user_bid, amount, currency, created, updated in rows:
            label = USAGE_STATUS_LABELS.get(status, status)
            amount_off = amount if order_bid else ""
            yield (*head, code, label, order_bid, user_bid, amount_off, currency, created, updated)


def export_response(batches: Iterable[CouponBatch], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    return StreamingHttpResponse(
        (writer.writerow([_cell(value) for value in row]) for row in export_rows(batches)),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# ---- the list of uses ----


class BatchFilter(admin.SimpleListFilter):
    """The uses of one batch (``?coupon_bid__exact=``, the link of a batch's page)."""

    title = "batch"
    parameter_name = "coupon_bid__exact"

    def lookups(self, request, model_admin):
        batches = CouponBatch.objects.values_list("coupon_bid", "name")
        offered = list(batches.order_by("-id")[:BATCHES_OFFERED])
        chosen = self.value()
        if chosen and chosen not in dict(offered):
            offered.insert(0, batches.filter(coupon_bid=chosen).first() or (chosen, ""))
        return [(bid, f"{name} ({bid})" if name else bid) for bid, name in offered]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(coupon_bid=self.value())


def order_link(order_bid: str) -> str:
    if not order_bid:
        return EMPTY
    return link(reverse("admin:orders_order_by_bid", args=[order_bid]), order_bid)


@admin.register(CouponUsage)
class CouponUsageAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each code of a single-use batch and each use of a code by an order."""

    list_display = (
        "code",
        "batch_link",
        "status_label",
        "order",
        "user_bid",
        "amount_off",
        "created_at",
        "updated_at",
    )
    list_filter = ("status", BatchFilter)
    search_fields = ("=code", "=order_bid", "=user_bid")
    search_help_text = "Exact code, order id or user id."
    ordering = ("-id",)
    sortable_by = ()
    fields = (
        "coupon_usage_bid",
        "code",
        "batch_link",
        "status_label",
        "order",
        "user_bid",
        "shifu_bid",
        "discount_type",
        "value",
        "amount_off",
        "deleted",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("batch_link", "status_label", "order", "amount_off")

    @admin.display(description="batch")
    def batch_link(self, use: CouponUsage) -> str:
        url = reverse("admin:promos_couponbatch_by_bid", args=[use.coupon_bid])
        return link(url, use.name or use.coupon_bid)

    @admin.display(description="status")
    def status_label(self, use: CouponUsage) -> str:
        return label_with_code(use)

    @admin.display(description="order")
    def order(self, use: CouponUsage) -> str:
        return order_link(use.order_bid)

    @admin.display(description="amount off")
    def amount_off(self, use: CouponUsage) -> str:
        return money(use.discount_amount, use.currency) if use.order_bid else EMPTY
