"""Authentication backend: Django's, with the permissions of a staff account linked to
creators cut to what creator scoping covers.

Such an account (``orders.selectors.staff_creator_scope``) works on its creators' orders
only, and every place that shows or changes orders applies that scope: the order,
refund, approval, needs-attention, payment-attempt, webhook-event and product admins,
the REST API's orders and refunds. Everything else in the admin (discounts, platform
users, partner keys, bulk grants, product edits, Stripe's synced data) knows nothing of
creators, so whatever permissions the account's groups give there are not granted: the
admin then neither lists nor opens those pages for it. Creators' merchant accounts
(payment integrations) are not granted either: their keys are for superusers to manage.
Superusers and staff without a link keep their permissions as they are.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

# What a staff account limited to some creators may still be granted.
SCOPED_PERMISSIONS = frozenset(
    {
        "orders.view_order",
        "orders.view_orderevent",
        "orders.change_order",
        "orders.view_refund",
        "orders.add_refund",
        "orders.view_refundapproval",
        "orders.change_refundapproval",
        "orders.view_attention",
        "orders.change_attention",
        "orders.view_product",
        "payments.view_pingxxorder",
        "payments.view_stripeorder",
        "payments.view_sandboxattempt",
        "payments.view_alipayorder",
        "payments.view_wechatpayorder",
        "payments.view_webhookevent",
        "payments.change_webhookevent",
    }
)


class CreatorScopedBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        permissions = super().get_all_permissions(user_obj, obj)
        if not permissions:
            return permissions
        from orders.selectors import staff_creator_scope

        if staff_creator_scope(user_obj) is None:
            return permissions
        return permissions & SCOPED_PERMISSIONS
