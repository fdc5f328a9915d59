"""Creator scoping of the support console: staff accounts linked to creators (the
platform's course authors) see, export and refund only the orders of their courses.

The rule is ``orders.selectors.staff_creator_scope``: a superuser, or a staff account
with no link, sees everything; an account with links sees the orders of those creators
only. The order and refund admins filter their lists on it, and an order, refund or
approval out of scope answers 404, as one that does not exist would (never 403, which
would tell it exists). Payment attempts and inbox events are filtered through
``payments_project.admin_utils.register_order_bid_scope``, creators' merchant accounts
(payment integrations) through ``register_creator_scope``, both registered here.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import Http404

from orders.models import StaffCreator
from orders.selectors import order_bids_in_scope, scoped, staff_creator_scope
from payments_project.admin_utils import register_creator_scope, register_order_bid_scope

register_order_bid_scope(order_bids_in_scope)
register_creator_scope(staff_creator_scope)


class CreatorScopedAdminMixin:
    """An admin of orders, or of rows reaching their order by ``scope_prefix``
    (``order__``), that shows a scoped staff account only its creators' rows."""

    scope_prefix = ""

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user, self.scope_prefix)

    def in_scope_or_404(self, request, object_id) -> None:
        """Raise 404 when a scoped account asks for a row it may not see (or none)."""
        if staff_creator_scope(request.user) is None:
            return
        if self.get_object(request, unquote(str(object_id))) is None:
            raise Http404("Not found.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self.in_scope_or_404(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self.in_scope_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)


@admin.register(StaffCreator)
class StaffCreatorAdmin(admin.ModelAdmin):
    """Which creators' orders a staff account is restricted to: add one row per
    creator; an account with no row sees every order."""

    list_display = ("user", "creator_bid", "created_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "=creator_bid")
    search_help_text = "Part of the staff username, or an exact creator id."
    raw_id_fields = ("user",)
    fields = ("user", "creator_bid", "created_at")
    readonly_fields = ("created_at",)
    ordering = ("user__username", "creator_bid")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["help_text"] = "A staff account (superusers see everything regardless)."
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
