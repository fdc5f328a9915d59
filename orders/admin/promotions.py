"""The support console for promotions: campaigns (a discount on one product during a
window, taken by eligible orders without a code) with what they took off, and the
ledger of what each took off each order (read-only).

A campaign may change while it runs: each redemption keeps a snapshot of the name,
type and value it was taken with, so orders made earlier keep their price.
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotFound, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from orders.admin.coupon_codes import order_link
from orders.admin.discounts import discount_text, in_force_initial
from orders.admin.grants import ProductChoiceField
from orders.coupon_api import PERCENT_PATTERN
from orders.models import Product
from orders.serializers import POSITIVE_MONEY_PATTERN, PRICE_CURRENCIES, price_pattern
from payments_project.admin_utils import (
    EMPTY,
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    admin_change_url,
    admin_changelist_url,
    display,
    html_table,
    label_with_code,
    link,
    money,
)
from promos import selectors as promo_selectors
from promos.models import Campaign, CampaignRedemption, DiscountType


class CampaignForm(forms.ModelForm):
    """A campaign on one product. The value follows the coupon API's rules: a percentage
    of 0.01 to 100, or an amount above zero that fits the product's currency (the
    campaign's currency becomes the product's)."""

    product = ProductChoiceField(
        queryset=Product.objects.order_by("name"), to_field_name="product_bid"
    )

    class Meta:
        model = Campaign
        fields = (
            "name",
            "description",
            "product",
            "discount_type",
            "value",
            "start_at",
            "end_at",
            "stackable",
            "apply_type",
            "status",
        )
        labels = {"start_at": "Starts", "end_at": "Ends"}
        help_texts = {
            "value": "A percentage (0.01 to 100), or an amount in the product's currency.",
            "apply_type": "Only automatic campaigns are applied to orders.",
            "status": "Inactive: the campaign stops applying; nothing is deleted.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["product"] = self.instance.shifu_bid
        in_force_initial(self)

    def clean(self):
        data = super().clean()
        product, value = data.get("product"), data.get("value")
        if value is not None and data.get("discount_type") == DiscountType.PERCENT:
            if not re.fullmatch(PERCENT_PATTERN, str(value)):
                self.add_error("value", "A percentage above 0, at most 100.")
        elif product is not None and product.currency not in PRICE_CURRENCIES:
            self.add_error("product", f"Prices are not kept in {product.currency.upper()}.")
        elif value is not None and product is not None:
            fits = re.fullmatch(price_pattern(product.currency), str(value))
            if not (fits and re.fullmatch(POSITIVE_MONEY_PATTERN, str(value))):
                self.add_error("value", f"An amount of {product.currency.upper()} above zero.")
        start, end = data.get("start_at"), data.get("end_at")
        if start and end and end <= start:
            self.add_error("end_at", "The promotion must end after it starts.")
        return data

    def save(self, commit=True):
        campaign = super().save(commit=False)
        product = self.cleaned_data["product"]
        campaign.shifu_bid = product.product_bid
        fixed = campaign.discount_type == DiscountType.FIXED
        campaign.currency = product.currency if fixed else ""
        if commit:
            campaign.save()
        return campaign


class CampaignChangeList(ChangeList):
    """The page's campaigns with their figures and products: two queries a page."""

    def get_results(self, request):
        super().get_results(request)
        campaigns = list(self.result_list)
        figures = promo_selectors.campaign_figures([c.promo_bid for c in campaigns])
        products = _products(c.shifu_bid for c in campaigns)
        for campaign in campaigns:
            campaign._figures = figures[campaign.promo_bid]
            campaign._product = products.get(campaign.shifu_bid)


def _products(product_bids) -> dict[str, tuple[str, str]]:
    """``{product_bid: (name, currency)}`` in one query."""
    rows = Product.objects.filter(product_bid__in=set(product_bids)).values_list(
        "product_bid", "name", "currency"
    )
    return {bid: (name, currency) for bid, name, currency in rows}


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = (
        "name",
        "product_display",
        "window",
        "discount_display",
        "stackable",
        "status",
        "applied",
        "voided",
        "taken_off",
    )
    list_filter = ("status", "stackable", "apply_type")
    search_fields = ("name", "=promo_bid", "=shifu_bid")
    search_help_text = "Part of the name, or an exact promotion or product id."
    ordering = ("-id",)
    fieldsets = (
        (None, {"fields": ("name", "description", "product", "status", "apply_type")}),
        ("Discount", {"fields": ("discount_type", "value", "stackable")}),
        ("Window", {"fields": ("start_at", "end_at")}),
        ("Taken off", {"fields": ("figures",)}),
        (
            "History",
            {
                "fields": (
                    "promo_bid",
                    "created_user_bid",
                    "created_at",
                    "updated_user_bid",
                    "updated_at",
                )
            },
        ),
    )
    readonly_fields = (
        "figures",
        "promo_bid",
        "created_user_bid",
        "created_at",
        "updated_user_bid",
        "updated_at",
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # nothing taken off, no history yet
            return self.fieldsets[:3]
        return self.fieldsets

    def get_changelist(self, request, **kwargs):
        return CampaignChangeList

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("by-bid/<str:promo_bid>/", view(self.by_bid_view), name="promos_campaign_by_bid"),
            *super().get_urls(),
        ]

    def by_bid_view(self, request, promo_bid):
        """A campaign's page by its business id (what the redemptions list links to)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        pk = Campaign.objects.filter(promo_bid=promo_bid).values_list("pk", flat=True).first()
        if pk is None:
            return HttpResponseNotFound(f"No promotion {promo_bid}.", content_type="text/plain")
        return HttpResponseRedirect(admin_change_url(Campaign, pk))

    def save_model(self, request, obj, form, change):
        who = request.user.get_username()[:36]
        if not change:
            obj.created_user_bid = who
        obj.updated_user_bid = who
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Redemptions name their campaign; a campaign is switched off by its status.
        return False

    # ---- columns and fields ----

    def _figures(self, campaign: Campaign) -> dict:
        found = getattr(campaign, "_figures", None)
        if found is None:
            found = promo_selectors.campaign_figures([campaign.promo_bid])[campaign.promo_bid]
            campaign._figures = found
        return found

    def _product(self, campaign: Campaign) -> tuple[str, str] | None:
        if not hasattr(campaign, "_product"):
            campaign._product = _products([campaign.shifu_bid]).get(campaign.shifu_bid)
        return campaign._product

    @admin.display(description="product")
    def product_display(self, campaign: Campaign) -> str:
        product = self._product(campaign)
        return f"{product[0]} ({campaign.shifu_bid})" if product else campaign.shifu_bid

    @admin.display(description="window")
    def window(self, campaign: Campaign) -> str:
        return f"{display(campaign.start_at)} - {display(campaign.end_at)}"

    @admin.display(description="discount")
    def discount_display(self, campaign: Campaign) -> str:
        return discount_text(campaign.discount_type, campaign.value, campaign.currency)

    @admin.display(description="applied")
    def applied(self, campaign: Campaign) -> int:
        return self._figures(campaign)["applied"]

    @admin.display(description="voided")
    def voided(self, campaign: Campaign) -> int:
        return self._figures(campaign)["voided"]

    @admin.display(description="taken off")
    def taken_off(self, campaign: Campaign) -> str:
        taken_off = self._figures(campaign)["taken_off"]
        if not taken_off:
            return money(None, campaign.currency)
        return " + ".join(money(amount, currency) for currency, amount in sorted(taken_off.items()))

    @admin.display(description="figures")
    def figures(self, campaign: Campaign) -> str:
        table = html_table(
            ("orders applied to", "voided (orders that died unpaid)", "taken off"),
            [(self.applied(campaign), self.voided(campaign), self.taken_off(campaign))],
        )
        url = admin_changelist_url(CampaignRedemption, promo_bid__exact=campaign.promo_bid)
        return format_html("{}<p>{}</p>", table, link(url, "the redemptions"))


@admin.register(CampaignRedemption)
class CampaignRedemptionAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "promotion",
        "order",
        "user_bid",
        "amount_off",
        "status_label",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("=order_bid", "=promo_bid", "=user_bid")
    search_help_text = "Exact order, promotion or user id."
    ordering = ("-id",)
    sortable_by = ()
    fields = (
        "redemption_bid",
        "promotion",
        "order",
        "user_bid",
        "shifu_bid",
        "discount_type",
        "value",
        "amount_off",
        "status_label",
        "deleted",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("promotion", "order", "amount_off", "status_label")

    @admin.display(description="promotion")
    def promotion(self, row: CampaignRedemption) -> str:
        url = reverse("admin:promos_campaign_by_bid", args=[row.promo_bid])
        return link(url, row.promo_name or row.promo_bid)

    @admin.display(description="order")
    def order(self, row: CampaignRedemption) -> str:
        return order_link(row.order_bid) if row.order_bid else EMPTY

    @admin.display(description="amount off")
    def amount_off(self, row: CampaignRedemption) -> str:
        return money(row.discount_amount, row.currency)

    @admin.display(description="status")
    def status_label(self, row: CampaignRedemption) -> str:
        return label_with_code(row)
