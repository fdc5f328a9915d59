"""The admin site as a support team reads it: what they work with first.

The index and the sidebar open with one *Support* section (orders, refunds and their
approvals, the needs-attention queue, products, webhook events and the dashboard), ahead
of every other section. The data that dj-stripe syncs from Stripe (about forty models)
sits last, under one collapsed section whose entries all say *Stripe*, so that Stripe's
coupons, API keys and entitlements are never mistaken for the service's own; staff
without permissions on them do not see it at all (the admin lists only what a user may
view).

No model is imported here: ``ConsoleAdminConfig`` replaces ``django.contrib.admin`` in
INSTALLED_APPS and names the site class, which the registry loads once apps are ready.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import NoReverseMatch, reverse

# The support section, in this order: (app label, model class name).
SUPPORT = (
    ("orders", "Order"),
    ("orders", "Refund"),
    ("orders", "RefundApproval"),
    ("orders", "Attention"),
    ("orders", "Product"),
    ("payments", "WebhookEvent"),
)
SUPPORT_LABEL = "support"
# The apps listed after the support section, in this order; the others follow by name,
# and the synced Stripe data comes last.
APP_ORDER = ("orders", "payments", "promos", "bridge", "auth", "authtoken")
STRIPE_APP = "djstripe"


class ConsoleSite(admin.AdminSite):
    site_header = "Course payments"
    site_title = "Course payments"
    index_title = "Support console"

    def get_app_list(self, request, app_label=None):
        app_dict = self._build_app_dict(request, app_label)
        if app_label:  # one application's own page: as Django lists it
            return super().get_app_list(request, app_label)
        found = {
            (label, model["object_name"]): model
            for label, app in app_dict.items()
            for model in app["models"]
        }
        support = [found[key] for key in SUPPORT if key in found]
        dashboard = _dashboard_entry(request)
        if dashboard:
            support.insert(0, dashboard)
        taken = {id(model) for model in support}
        rest = []
        for label, app in app_dict.items():
            app["models"] = [m for m in app["models"] if id(m) not in taken]
            app["models"].sort(key=lambda m: m["name"].lower())
            if label == STRIPE_APP:
                _as_stripe_section(app)
            if app["models"]:
                rest.append(app)
        rest.sort(key=_app_position)
        if not support:
            return rest
        section = {
            "name": "Support",
            "app_label": SUPPORT_LABEL,
            "app_url": support[0]["admin_url"],
            "has_module_perms": True,
            "models": support,
        }
        return [section, *rest]


def _app_position(app: dict) -> tuple:
    label = app["app_label"]
    if label == STRIPE_APP:
        return (2, 0, "")
    if label in APP_ORDER:
        return (0, APP_ORDER.index(label), "")
    return (1, 0, app["name"].lower())


def _as_stripe_section(app: dict) -> None:
    """One collapsed section, each entry named as Stripe's: *Stripe coupons*."""
    app["name"] = "Stripe: data synced from Stripe"
    app["collapsed"] = True
    for model in app["models"]:
        name = str(model["name"])
        if not name.lower().startswith("stripe"):
            model["name"] = f"Stripe {name[:1].lower()}{name[1:]}"


def _dashboard_entry(request) -> dict | None:
    """The dashboard's line: for staff who may view orders and are not limited to some
    creators (its figures are every creator's)."""
    from orders.selectors import staff_creator_scope

    if not request.user.has_perm("orders.view_order"):
        return None
    if staff_creator_scope(request.user) is not None:
        return None
    try:
        url = reverse("admin:orders_order_dashboard")
    except NoReverseMatch:
        return None
    return {
        "name": "Dashboard",
        "object_name": "Dashboard",
        "perms": {"view": True},
        "admin_url": url,
        "add_url": None,
        "view_only": True,
    }


class ConsoleAdminConfig(AdminConfig):
    default_site = "orders.console_site.ConsoleSite"
