"""URLs and readers of the admin's pages, for its tests."""

import re

from django.urls import reverse

ORDERS = reverse("admin:orders_order_changelist")
PRODUCTS = reverse("admin:orders_product_changelist")
REFUNDS = reverse("admin:orders_refund_changelist")

# A COUNT over order_orders is acceptable only over a LIMITed subquery.
BOUNDED_COUNT = re.compile(r"COUNT\(\*\).*FROM \(SELECT .* LIMIT \d+\) subquery", re.I | re.S)


def change_url(obj):
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def rows(response, column="status_label"):
    """Number of rows of a changelist: one cell of ``column`` each."""
    return response.content.decode().count(f'class="field-{column}"')


def order_counts(queries):
    return [
        q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "order_orders" in q["sql"]
    ]
