"""The support console for coupons: batches (made through ``promos.batches.batch_create``
with the API's own rules, switched off by status, never deleted), their codes and uses,
and the export of a batch's codes. The bulk grant hangs on the batch list
(``orders.admin.grants``); promotions are in ``orders.admin.promotions``.

A batch's discount (type, value, currency), usage and products are read-only once it
exists: single-use codes copy the type and value when they are generated, unpaid orders
hold reservations priced with them, and a code handed out for one product must not
start working on another. To change a discount, switch the batch off and make another.
"""

from __future__ import annotations

from collections.abc import Iterable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import widgets
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotFound, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from orders.admin.coupon_codes import export_response, order_link
from orders.admin.grants import BulkGrantMixin, ProductsChoiceField
from orders.coupon_api import (
    CouponBatchCreateSerializer,
    CouponCurrencyMismatch,
    CouponWindowEmpty,
    batch_spec,
)
from orders.errors import ProductNotFound
from orders.models import Product
from orders.serializers import PRICE_CURRENCIES
from payments_project.admin_utils import (
    EMPTY,
    admin_change_url,
    admin_changelist_url,
    display,
    html_table,
    label_with_code,
    link,
    money,
)
from payments_project.db import Deleted
from promos import selectors as promo_selectors
from promos.batches import MAX_CODES, batch_create, code_in_use
from promos.models import (
    BatchStatus,
    CouponBatch,
    CouponUsage,
    DiscountType,
    UsageType,
    enabled_q,
)

# Uses shown on a batch's page; the rest are one click away in the uses list.
USES_SHOWN = 200


# ---- what a batch shows ----


def discount_text(discount_type: int, value, currency: str) -> str:
    """``15 %`` or ``5.00 CNY``."""
    if discount_type == DiscountType.PERCENT:
        return f"{value.normalize():f} %"
    return money(value, currency)


def product_names(product_bids: Iterable[str]) -> dict[str, str]:
    """The names of the products named, in one query."""
    bids = set(product_bids)
    if not bids:
        return {}
    return dict(Product.objects.filter(product_bid__in=bids).values_list("product_bid", "name"))


def held_now(batch: CouponBatch, figures: dict[str, int]) -> int:
    """The uses the batch's caps count: reserved or used (its counter, or its rows)."""
    return max(batch.used_count, figures["used"] + figures["reserved"])


def in_force_initial(form: forms.ModelForm) -> None:
    """A row the old system's operators wrote without author counts as active whatever
    its status; the form shows it as it acts, and saving writes that status (the save
    records an author, which ends the old rule for the row)."""
    row = form.instance
    legacy = type(row).objects.filter(enabled_q(), pk=row.pk, status=BatchStatus.INACTIVE)
    if row.pk and legacy.exists():
        form.initial["status"] = BatchStatus.ACTIVE


# ---- forms ----


class BatchAddForm(forms.ModelForm):
    """A new batch, checked by the API's rules: its input serializer, then ``batch_spec``
    (window, products, currency), then the code. The batch is made by ``batch_create``
    when the admin saves, in the admin's transaction."""

    name = forms.CharField(max_length=255)
    discount_type = forms.ChoiceField(
        choices=[("percent", "percent"), ("fixed", "fixed amount")], initial="percent"
    )
    value = forms.CharField(
        max_length=20,
        help_text="A percentage (0.01 to 100), or an amount in major units of the currency.",
    )
    currency = forms.ChoiceField(
        choices=[("", "---------"), *((c, c.upper()) for c in PRICE_CURRENCIES)],
        required=False,
        help_text="Fixed amounts only: the currency of the products it is for.",
    )
    starts_at = forms.SplitDateTimeField(widget=widgets.AdminSplitDateTime)
    ends_at = forms.SplitDateTimeField(widget=widgets.AdminSplitDateTime)
    products = ProductsChoiceField(
        queryset=Product.objects.order_by("name"),
        to_field_name="product_bid",
        required=False,
        widget=widgets.FilteredSelectMultiple("products", is_stacked=False),
        help_text="None chosen: every product.",
    )
    usage = forms.ChoiceField(
        choices=[("shared", "shared: one code, many buyers"), ("single", "single-use codes")]
    )
    code = forms.CharField(
        max_length=36,
        required=False,
        help_text="Shared only: the code buyers enter, 4-36 letters, digits, - or _.",
    )
    count = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_CODES,
        help_text="Single-use only: how many codes to generate.",
    )
    total_limit = forms.IntegerField(
        required=False, min_value=1, help_text="Shared only: how many uses in all."
    )
    per_user_limit = forms.IntegerField(
        min_value=1, initial=1, help_text="Uses one user may hold at once (reserved or used)."
    )
    stacks_with_promotions = forms.BooleanField(required=False)
    release_on_refund = forms.BooleanField(
        required=False, initial=True, help_text="A full refund gives the use back."
    )

    class Meta:
        model = CouponBatch
        # Every column comes from batch_create, none from this form; ``fields = ()``
        # would have the model validate the empty instance's columns of the same names.
        exclude = [field.name for field in CouponBatch._meta.concrete_fields]  # noqa: DJ006

    def clean(self):
        data = super().clean()
        api = CouponBatchCreateSerializer(data=self._as_api_input(data))
        if not api.is_valid():
            for name, problems in api.errors.items():
                self._problem(name, [str(problem) for problem in problems])
            return data
        if self.errors:
            return data
        try:
            self.spec = batch_spec(api.validated_data)
        except CouponWindowEmpty:
            self._problem("ends_at", "The batch must end after it starts.")
        except (ProductNotFound, CouponCurrencyMismatch) as exc:
            self._problem("products", exc.message)
        else:
            if self.spec.code and code_in_use(self.spec.code):
                self._problem("code", f"The code {self.spec.code!r} is taken by another coupon.")
        return data

    def _as_api_input(self, data: dict) -> dict:
        """The cleaned fields as the API's JSON would carry them (absent: left out)."""
        given = {
            "name": data.get("name"),
            "discount_type": data.get("discount_type"),
            "value": (data.get("value") or "").strip() or None,
            "currency": data.get("currency") or None,
            "starts_at": data.get("starts_at"),
            "ends_at": data.get("ends_at"),
            "usage": data.get("usage"),
            "code": (data.get("code") or "").strip(),
            "count": data.get("count"),
            "total_limit": data.get("total_limit"),
            "per_user_limit": data.get("per_user_limit"),
            "stacks_with_promotions": bool(data.get("stacks_with_promotions")),
            "release_on_refund": bool(data.get("release_on_refund")),
        }
        if "products" in data:
            given["products"] = [product.product_bid for product in data["products"]]
        return {name: value for name, value in given.items() if value is not None}

    def _problem(self, name: str, message) -> None:
        """An error on its field (once: a field this form already refused keeps its own)."""
        field = name if name in self.fields else None
        if field is None or field not in self.errors:
            self.add_error(field, message)


class BatchChangeForm(forms.ModelForm):
    """What may change once codes are out: name, window, status, caps and flags. The
    total never goes below the uses held, checked under the batch's row lock (kept to
    the end of the admin's transaction, so no reservation slips in between)."""

    class Meta:
        model = CouponBatch
        fields = (
            "name",
            "status",
            "start",
            "end",
            "total_count",
            "per_user_limit",
            "stacks_with_promotions",
            "release_on_refund",
        )
        labels = {"start": "Starts", "end": "Ends", "total_count": "Total limit"}
        help_texts = {
            "status": "Inactive: the codes stop working; nothing is deleted.",
            "total_count": "Uses in all; never below the uses held (reserved or used).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        in_force_initial(self)

    def clean_per_user_limit(self):
        """At least 1; or 0 (no cap) kept on a batch that has it (the old system's)."""
        limit = self.cleaned_data["per_user_limit"]
        if limit < 1 and not (limit == 0 and self.instance.per_user_limit == 0):
            raise forms.ValidationError("At least 1.")
        return limit

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error("end", "The batch must end after it starts.")
        total = data.get("total_count")
        if "total_count" in self.changed_data and total is not None:
            locked = CouponBatch.objects.select_for_update().get(pk=self.instance.pk)
            figures = promo_selectors.batch_figures([locked.coupon_bid])[locked.coupon_bid]
            held = held_now(locked, figures)
            if total < max(held, 1):
                self.add_error(
                    "total_count",
                    f"{held} uses are held (reserved or used); the total cannot go below "
                    f"{max(held, 1)}.",
                )
        return data


# ---- lists ----


class BatchChangeList(ChangeList):
    """The page's batches with their figures and product names: two queries a page,
    however many batches it shows."""

    def get_results(self, request):
        super().get_results(request)
        batches = list(self.result_list)
        figures = promo_selectors.batch_figures([batch.coupon_bid for batch in batches])
        names = product_names(bid for batch in batches for bid in batch.products)
        for batch in batches:
            batch._figures = figures[batch.coupon_bid]
            batch._product_names = names


# ---- the admins ----


@admin.register(CouponBatch)
class CouponBatchAdmin(BulkGrantMixin, admin.ModelAdmin):
    change_list_template = "admin/orders/discounts/batch_change_list.html"
    change_form_template = "admin/orders/discounts/batch_change_form.html"
    form = BatchChangeForm
    list_display = (
        "name",
        "code_display",
        "discount_display",
        "window",
        "products_display",
        "limits",
        "used",
        "reserved",
        "released",
        "available",
        "status",
    )
    list_filter = ("status", "usage_type")
    search_fields = ("name", "=code", "=coupon_bid")
    search_help_text = "Part of the name, or an exact code (shared or single-use) or coupon id."
    ordering = ("-id",)
    actions = ("export_selected",)
    add_fieldsets = (
        (None, {"fields": ("name", "usage", "code", "count")}),
        ("Discount", {"fields": ("discount_type", "value", "currency", "products")}),
        ("Window", {"fields": ("starts_at", "ends_at")}),
        (
            "Limits",
            {
                "fields": (
                    "total_limit",
                    "per_user_limit",
                    "stacks_with_promotions",
                    "release_on_refund",
                )
            },
        ),
    )
    fieldsets = (
        (None, {"fields": ("name", "coupon_bid", "code_display", "usage_label", "status")}),
        (
            "Discount",
            {
                "fields": (
                    "discount_display",
                    "products_display",
                    "stacks_with_promotions",
                    "release_on_refund",
                )
            },
        ),
        ("Window", {"fields": ("start", "end")}),
        ("Limits", {"fields": ("total_count", "per_user_limit")}),
        ("Uses", {"fields": ("figures", "uses_table")}),
        (
            "History",
            {"fields": ("created_user_bid", "created_at", "updated_user_bid", "updated_at")},
        ),
    )
    readonly_fields = (
        "coupon_bid",
        "code_display",
        "usage_label",
        "discount_display",
        "products_display",
        "figures",
        "uses_table",
        "created_user_bid",
        "created_at",
        "updated_user_bid",
        "updated_at",
    )

    # ---- forms ----

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if obj.usage_type == UsageType.SINGLE:  # its total is its number of codes
            return (*self.readonly_fields, "total_count")
        return self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            return BatchAddForm
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request, obj, form, change):
        who = request.user.get_username()[:36]
        if not change:
            batch, codes = batch_create(spec=form.spec, actor=request.user)
            for field in CouponBatch._meta.concrete_fields:
                setattr(obj, field.attname, getattr(batch, field.attname))
            obj._state.adding = False
            if batch.usage_type == UsageType.SINGLE:
                self.message_user(
                    request,
                    f"{len(codes)} single-use codes generated; export them from the batch's "
                    "page (Export codes).",
                    messages.INFO,
                )
            return
        # Only what the form changed: the counters are the services', moved under the
        # row's lock meanwhile, and a full save would put back the values read earlier.
        fields = [name for name in form.changed_data if name in form.fields]
        if "status" in form.fields:
            fields.append("status")  # as shown, for a legacy row too: see in_force_initial
        obj.updated_user_bid = who
        obj.save(update_fields=[*dict.fromkeys(fields), "updated_user_bid", "updated_at"])

    def log_addition(self, request, obj, message):
        """``batch_create`` has written the history line, with the codes made."""
        return None

    def has_delete_permission(self, request, obj=None) -> bool:
        # Uses and orders point at batches by bid; a batch is switched off by its status.
        return False

    # ---- urls and views ----

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/export/",
                view(self.export_view),
                name="promos_couponbatch_export",
            ),
            path(
                "by-bid/<str:coupon_bid>/",
                view(self.by_bid_view),
                name="promos_couponbatch_by_bid",
            ),
            *super().get_urls(),
        ]

    def get_changelist(self, request, **kwargs):
        return BatchChangeList

    def get_search_results(self, request, queryset, search_term):
        """Also the batch of a single-use code (one indexed lookup)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term and not term.split()[1:]:
            bids = CouponUsage.objects.filter(code=term).values_list("coupon_bid", flat=True)
            found = list(bids.distinct()[:10])
            if found:
                results = results | queryset.filter(coupon_bid__in=found)
        return results, may_have_duplicates

    def export_view(self, request, object_id):
        batch = self.get_object(request, unquote(object_id))
        if batch is None:
            raise Http404(f"No coupon batch {object_id}.")
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        return export_response([batch], f"coupon-{batch.coupon_bid}.csv")

    def by_bid_view(self, request, coupon_bid):
        """A batch's page by its business id (what the uses list links to)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        pk = CouponBatch.objects.filter(coupon_bid=coupon_bid).values_list("pk", flat=True).first()
        if pk is None:
            return HttpResponseNotFound(f"No coupon batch {coupon_bid}.", content_type="text/plain")
        return HttpResponseRedirect(admin_change_url(CouponBatch, pk))

    @admin.action(description="Export codes (CSV)", permissions=["view"])
    def export_selected(self, request, queryset):
        return export_response(list(queryset.order_by("id")), "coupons.csv")

    # ---- columns and fields ----

    def _figures(self, batch: CouponBatch) -> dict[str, int]:
        found = getattr(batch, "_figures", None)
        if found is None:
            found = promo_selectors.batch_figures([batch.coupon_bid])[batch.coupon_bid]
            batch._figures = found
        return found

    @admin.display(description="code")
    def code_display(self, batch: CouponBatch) -> str:
        if batch.usage_type == UsageType.SINGLE:
            return f"{batch.total_count} single-use codes"
        return batch.code or EMPTY

    @admin.display(description="usage")
    def usage_label(self, batch: CouponBatch) -> str:
        return label_with_code(batch, "usage_type")

    @admin.display(description="discount")
    def discount_display(self, batch: CouponBatch) -> str:
        return discount_text(batch.discount_type, batch.value, batch.currency)

    @admin.display(description="window")
    def window(self, batch: CouponBatch) -> str:
        return f"{display(batch.start)} - {display(batch.end)}"

    @admin.display(description="products")
    def products_display(self, batch: CouponBatch) -> str:
        bids = batch.products
        if not bids:
            return "all"
        names = getattr(batch, "_product_names", None)
        if names is None:
            names = product_names(bids)
        return ", ".join(f"{names[bid]} ({bid})" if bid in names else bid for bid in bids)

    @admin.display(description="limits")
    def limits(self, batch: CouponBatch) -> str:
        total = "one use a code" if batch.usage_type == UsageType.SINGLE else batch.total_count
        return f"total {total}; per user {batch.per_user_limit}"

    @admin.display(description="used")
    def used(self, batch: CouponBatch) -> int:
        return self._figures(batch)["used"]

    @admin.display(description="reserved")
    def reserved(self, batch: CouponBatch) -> int:
        return self._figures(batch)["reserved"]

    @admin.display(description="released")
    def released(self, batch: CouponBatch) -> int:
        return self._figures(batch)["released"]

    @admin.display(description="available")
    def available(self, batch: CouponBatch) -> int | str:
        if batch.usage_type != UsageType.SINGLE:
            figures = self._figures(batch)
            return max(batch.total_count - held_now(batch, figures), 0)
        return self._figures(batch)["available"]

    @admin.display(description="figures")
    def figures(self, batch: CouponBatch) -> str:
        figures = self._figures(batch)
        return html_table(
            ("used", "reserved", "released", "available", "counted against the total"),
            [
                (
                    figures["used"],
                    figures["reserved"],
                    figures["released"],
                    self.available(batch),
                    f"{batch.used_count} of {batch.total_count}",
                )
            ],
        )

    @admin.display(description="orders that used a code")
    def uses_table(self, batch: CouponBatch) -> str:
        uses = list(
            CouponUsage.objects.filter(coupon_bid=batch.coupon_bid, deleted=Deleted.ACTIVE)
            .exclude(order_bid="")
            .order_by("-id")[: USES_SHOWN + 1]
        )
        table = html_table(
            ("code", "status", "order", "user", "amount off", "when"),
            (
                (
                    use.code,
                    label_with_code(use),
                    order_link(use.order_bid),
                    use.user_bid or EMPTY,
                    money(use.discount_amount, use.currency),
                    display(use.updated_at),
                )
                for use in uses[:USES_SHOWN]
            ),
        )
        if table == EMPTY:
            return EMPTY
        more = len(uses) > USES_SHOWN
        caption = f"latest {USES_SHOWN} shown; see all" if more else "open in the list"
        url = admin_changelist_url(CouponUsage, coupon_bid__exact=batch.coupon_bid)
        return format_html("{}<p>{}</p>", table, link(url, caption))

    # ---- pages ----

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), **self.grant_context(request)}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        export = reverse("admin:promos_couponbatch_export", args=[object_id])
        uses = reverse("admin:promos_couponusage_changelist")
        extra_context = {**(extra_context or {}), "export_url": export, "uses_url": uses}
        return super().change_view(request, object_id, form_url, extra_context)
