"""The bulk grant: staff give a product to a list of users at once, each through
``orders.services.entitlement_grant`` (a paid order of channel ``grant`` and amount 0,
with who and why in its history), and see what became of each.

It needs ``orders.add_order``: a grant makes an order, paid, without money; staff who
may only view orders, or refund them, may not give courses away. Its page hangs on the
coupon batch admin (``BulkGrantMixin``, as ``console.SupportConsoleMixin`` hangs on the
order admin) and is linked from the products and coupon batch lists and the Orders
page of the admin.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

from django import forms
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse

from orders import services
from orders.models import Product
from payments_project.errors import ServiceError

log = logging.getLogger(__name__)

MAX_USERS = 5_000
# A grant takes about 15 ms; gunicorn ends a request after 60 s. Past this many seconds
# the page stops and offers the users not reached yet (granting again is harmless).
GRANT_SECONDS = 40
# The granted users named in the product's admin history; each order's own history
# names its grant whatever their number.
USERS_LOGGED = 100
SEPARATORS = re.compile(r"[\s,;]+")


class ProductLabel:
    """Products named with their id: two courses may share a name."""

    def label_from_instance(self, product: Product) -> str:
        return f"{product.name} ({product.product_bid})"


class ProductChoiceField(ProductLabel, forms.ModelChoiceField):
    pass


class ProductsChoiceField(ProductLabel, forms.ModelMultipleChoiceField):
    pass


class BulkGrantForm(forms.Form):
    product = ProductChoiceField(
        queryset=Product.objects.order_by("name"),
        to_field_name="product_bid",
        help_text="The course each user gets, as a paid order of amount 0 (channel grant).",
    )
    user_bids = forms.CharField(
        label="user_bids",
        widget=forms.Textarea(attrs={"rows": 12, "cols": 60}),
        help_text=(
            f"One per line or separated by commas; blank lines and repeats are ignored; at "
            f"most {MAX_USERS:,}."
        ),
    )
    reason = forms.CharField(max_length=255, help_text="Kept in each order's history.")

    def clean_user_bids(self) -> list[str]:
        parts = SEPARATORS.split(self.cleaned_data["user_bids"])
        found = [user_bid for user_bid in dict.fromkeys(parts) if user_bid]
        if not found:
            raise forms.ValidationError("At least one user_bid.")
        if len(found) > MAX_USERS:
            raise forms.ValidationError(
                f"At most {MAX_USERS:,} users at once; {len(found):,} given."
            )
        return found


@dataclass
class GrantReport:
    granted: list[str] = field(default_factory=list)
    owned: list[str] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # bid, code, message
    left: list[str] = field(default_factory=list)  # not reached in time


def grants_run(*, product: Product, user_bids: list[str], reason: str, source: str) -> GrantReport:
    """Grant ``product`` to each user, each in its own transactions: one user refused
    (or failing) never stops the others. Stops after ``GRANT_SECONDS``; the users not
    reached are in ``left``."""
    report = GrantReport()
    deadline = time.monotonic() + GRANT_SECONDS
    for done, user_bid in enumerate(user_bids):
        if done and time.monotonic() > deadline:
            report.left = user_bids[done:]
            break
        try:
            _, created = services.entitlement_grant(
                user_bid=user_bid, product_bid=product.product_bid, reason=reason, source=source
            )
        except ServiceError as exc:
            report.refused.append((user_bid, exc.code, exc.message))
            continue
        except Exception:
            log.exception("bulk grant of %s to %s failed", product.product_bid, user_bid)
            report.refused.append((user_bid, "internal_error", "failed; see the service's log"))
            continue
        (report.granted if created else report.owned).append(user_bid)
    return report


def grant_message(report: GrantReport, reason: str) -> str:
    """The product's history line: what was granted, to whom, why."""
    named = ", ".join(report.granted[:USERS_LOGGED])
    more = len(report.granted) - USERS_LOGGED
    if more > 0:
        named += f" and {more} more"
    return (
        f"Bulk grant ({reason}): granted to {len(report.granted)} users"
        f"{': ' + named if named else ''}; {len(report.owned)} owned it already; "
        f"{len(report.refused)} refused"
        f"{f'; {len(report.left)} not reached' if report.left else ''}."
    )


class BulkGrantMixin:
    """The bulk grant page, for a model admin: its URL, view and the list's link."""

    def has_grant_permission(self, request) -> bool:
        return request.user.has_perm("orders.add_order")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("bulk-grant/", view(self.bulk_grant_view), name="orders_product_bulk_grant"),
            *super().get_urls(),
        ]

    def grant_context(self, request) -> dict:
        if not self.has_grant_permission(request):
            return {}
        return {"bulk_grant_url": reverse("admin:orders_product_bulk_grant")}

    def bulk_grant_view(self, request):
        if not self.has_grant_permission(request):
            raise PermissionDenied
        form = BulkGrantForm(request.POST if request.method == "POST" else None)
        report = product = None
        if form.is_bound and form.is_valid():
            product = form.cleaned_data["product"]
            reason = form.cleaned_data["reason"]
            report = grants_run(
                product=product,
                user_bids=form.cleaned_data["user_bids"],
                reason=reason,
                source=f"admin:{request.user.get_username()}",
            )
            self.log_change(request, product, grant_message(report, reason))
            if report.left:  # the rest, ready to submit again
                form = BulkGrantForm(
                    initial={
                        "product": product.product_bid,
                        "user_bids": "\n".join(report.left),
                        "reason": reason,
                    }
                )
        return TemplateResponse(
            request,
            "admin/orders/bulk_grant.html",
            {
                **self.admin_site.each_context(request),
                "title": "Bulk grant",
                "opts": Product._meta,
                "form": form,
                "report": report,
                "product": product,
            },
        )
