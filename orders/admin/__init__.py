"""Admin for products (editable), orders and refunds (read-only), and the support
console: refunds (with approval above a threshold), sync, retry, mark paid by hand, a
dashboard, and the Needs attention list; discounts (coupon batches and their codes,
promotions) and the bulk grant of a product. The order and refund lists are searched by
id, e-mail, product name and amount, exported as CSV, and cut to their creators' orders
for staff linked to creators (``scoping``).

Orders and refunds change only through the services (``orders.services`` and its
``staff`` module), which check transitions, lock rows and write audit events; every
console action also leaves an admin log entry. Importing the modules registers them.
"""

from orders.admin import (
    attention,
    console,
    coupon_codes,
    discounts,
    exports,
    grants,
    orders,
    products,
    promotions,
    refunds,
    scoping,
    search,
)

__all__ = [
    "attention",
    "console",
    "coupon_codes",
    "discounts",
    "exports",
    "grants",
    "orders",
    "products",
    "promotions",
    "refunds",
    "scoping",
    "search",
]
