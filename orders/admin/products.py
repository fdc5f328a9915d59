"""Products: editable; a product leaves the shop by being deactivated, never deleted."""

from __future__ import annotations

from django.contrib import admin

from orders.models import Order, Product
from orders.selectors import staff_creator_scope
from payments_project.admin_utils import EMPTY, admin_changelist_url, link, money


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "product_bid",
        "creator_bid",
        "price_display",
        "active",
        "updated_at",
        "orders_link",
    )
    list_filter = ("active",)
    search_fields = ("=product_bid", "=creator_bid", "name")
    search_help_text = "Exact product or creator id, or part of the name."
    ordering = ("name",)
    fields = (
        "product_bid",
        "name",
        "description",
        "price",
        "currency",
        "active",
        "creator_bid",
        "orders_link",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request):
        """A staff account linked to creators sees their products only."""
        scope = staff_creator_scope(request.user)
        products = super().get_queryset(request)
        return products if scope is None else products.filter(creator_bid__in=scope)

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
