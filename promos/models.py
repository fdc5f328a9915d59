"""Coupon batches, their codes and uses, promotion campaigns and what they took off.

The four tables are the old system's (``promo_coupons``, ``promo_coupon_usages``,
``promo_promos``, ``promo_redemptions``), adopted with their names, columns, comments
and codes: a database that has them keeps its rows and they are honoured. Values are
DECIMAL(10,2) in major units; discounts are computed in minor units by ``pricing``.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.db import models
from django.db.models import Q

from payments_project.db import Deleted, LegacyDateTimeField, LegacyIndex, new_bid


class DiscountType(models.IntegerChoices):
    FIXED = 701, "fixed"
    PERCENT = 702, "percent"


class UsageType(models.IntegerChoices):
    # One code for many buyers, up to the batch's total; the old "通用折扣码".
    SHARED = 801, "shared"
    # N codes, each for one order; the old "一单一码".
    SINGLE = 802, "single"


class BatchStatus(models.IntegerChoices):
    INACTIVE = 0, "inactive"
    ACTIVE = 1, "active"


class UsageStatus(models.IntegerChoices):
    INACTIVE = 901, "inactive"
    # A code of a single-use batch that nobody holds: free to take.
    AVAILABLE = 902, "available"
    USED = 903, "used"
    TIMEOUT = 904, "timed out"
    # Held by an unpaid order; counts against the caps like a use.
    RESERVED = 905, "reserved"
    # Given back by an order cancelled, timed out or (by the batch's setting) refunded.
    RELEASED = 906, "released"


DELETED_COMMENT = "Deletion flag: 0=active, 1=deleted"

# What counts against a batch's caps.
TAKEN = (UsageStatus.RESERVED, UsageStatus.USED)


class CampaignStatus(models.IntegerChoices):
    INACTIVE = 0, "inactive"
    ACTIVE = 1, "active"


class CampaignApplyType(models.IntegerChoices):
    AUTO = 2101, "automatic"
    EVENT = 2102, "on an event"
    MANUAL = 2103, "manual"


class RedemptionStatus(models.IntegerChoices):
    APPLIED = 4101, "applied"
    VOIDED = 4102, "voided"


def _legacy_operator_row(row) -> bool:
    """Rows the old system's operators wrote by hand, without author: the old code
    treats them as enabled whatever their status, and so does this one."""
    return not (row.created_user_bid or "").strip() and not (row.updated_user_bid or "").strip()


def enabled_q() -> Q:
    """The batches and campaigns in force by status (the old rule included)."""
    blank = Q(created_user_bid="") & Q(updated_user_bid="")
    return Q(status=1) | (Q(status=0) & blank)


class CouponBatch(models.Model):
    """A coupon batch: its discount, window, product scope and caps. A shared batch
    has its one code here; a single-use batch has its codes in ``CouponUsage`` rows."""

    coupon_bid = models.CharField(
        max_length=36, default=new_bid, db_comment="Coupon business identifier"
    )
    name = models.CharField(max_length=255, db_comment="Coupon batch name")
    code = models.CharField(max_length=36, blank=True, default="", db_comment="Coupon code")
    discount_type = models.SmallIntegerField(
        choices=DiscountType.choices,
        default=DiscountType.FIXED,
        db_comment="Coupon type: 701=fixed, 702=percent",
    )
    usage_type = models.SmallIntegerField(
        choices=UsageType.choices,
        default=UsageType.SHARED,
        db_comment=(
            "Coupon apply type: 801=one coupon code for multiple times, "
            "802=one coupon code for one time"
        ),
    )
    value = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        db_comment="Coupon value: would be calculated to amount by coupon type",
    )
    start = LegacyDateTimeField(db_comment="Coupon start time")
    end = LegacyDateTimeField(db_comment="Coupon end time")
    channel = models.CharField(max_length=36, blank=True, default="", db_comment="Coupon channel")
    filter = models.TextField(
        blank=True,
        default="{}",
        db_comment="Coupon filter: would be used to filter user and shifu",
    )
    total_count = models.BigIntegerField(default=0, db_comment="Coupon total count")
    used_count = models.BigIntegerField(default=0, db_comment="Coupon used count")
    status = models.SmallIntegerField(
        choices=BatchStatus.choices,
        default=BatchStatus.ACTIVE,
        db_comment="Status of the discount: 0=inactive, 1=active",
    )
    deleted = models.SmallIntegerField(
        choices=Deleted.choices,
        default=Deleted.ACTIVE,
        db_comment="Deletion flag: 0=active, 1=deleted",
    )
    created_at = LegacyDateTimeField(auto_now_add=True, db_comment="Creation timestamp")
    created_user_bid = models.CharField(
        max_length=36, blank=True, default="", db_comment="Creator user business identifier"
    )
    updated_at = LegacyDateTimeField(auto_now=True, db_comment="Update timestamp")
    updated_user_bid = models.CharField(
        max_length=36, blank=True, default="", db_comment="Last updater user business identifier"
    )
    # Added by this service.
    currency = models.CharField(
        max_length=3,
        blank=True,
        default="",
        db_default="",
        db_comment="ISO 4217 currency of a fixed value, lower case; empty for percent",
    )
    per_user_limit = models.PositiveIntegerField(
        default=1, db_default=1, db_comment="Uses a user may hold at once (reserved or used)"
    )
    stacks_with_promotions = models.BooleanField(
        default=False, db_default=False, db_comment="Applies on top of a promotion's discount"
    )
    release_on_refund = models.BooleanField(
        default=True, db_default=True, db_comment="A full refund gives the use back"
    )

    class Meta:
        db_table = "promo_coupons"
        db_table_comment = "Promo coupons"
        verbose_name = "coupon batch"
        verbose_name_plural = "coupon batches"
        indexes = [
            LegacyIndex(fields=["coupon_bid"], name="ix_promo_coupons_coupon_bid"),
            LegacyIndex(fields=["code"], name="ix_promo_coupons_code"),
        ]

    def __str__(self) -> str:
        return self.name or self.coupon_bid

    @property
    def enabled(self) -> bool:
        return self.deleted == Deleted.ACTIVE and (
            self.status == BatchStatus.ACTIVE
            or (self.status == BatchStatus.INACTIVE and _legacy_operator_row(self))
        )

    @property
    def products(self) -> list[str]:
        """The products the batch applies to; empty for all. The old system's filter
        names one course (``course_id``); this service also writes ``course_ids``."""
        try:
            scope = json.loads(self.filter or "{}")
        except ValueError:
            return []
        if not isinstance(scope, dict):
            return []
        listed = scope.get("course_ids") or []
        one = scope.get("course_id") or ""
        found = [str(p) for p in listed if p] if isinstance(listed, list) else []
        return found or ([str(one)] if one else [])

    @staticmethod
    def scope_filter(products: list[str]) -> str:
        """The filter text for ``products``: the old one-course shape when it fits."""
        if not products:
            return "{}"
        if len(products) == 1:
            return json.dumps({"course_id": products[0]})
        return json.dumps({"course_ids": list(products)})


class CouponUsage(models.Model):
    """One code of a single-use batch (available, or held by an order), or one use of
    a shared code by an order."""

    coupon_usage_bid = models.CharField(
        max_length=36, default=new_bid, db_comment="Coupon usage business identifier"
    )
    coupon_bid = models.CharField(max_length=36, db_comment="Coupon business identifier")
    name = models.CharField(max_length=255, blank=True, default="", db_comment="Coupon name")
    user_bid = models.CharField(
        max_length=36, blank=True, default="", db_comment="User business identifier"
    )
    shifu_bid = models.CharField(
        max_length=36, blank=True, default="", db_comment="Shifu business identifier"
    )
    order_bid = models.CharField(
        max_length=36, blank=True, default="", db_comment="Order business identifier"
    )
    code = models.CharField(max_length=36, db_comment="Coupon code")
    discount_type = models.SmallIntegerField(
        choices=DiscountType.choices,
        default=DiscountType.FIXED,
        db_comment="Coupon Type: 701=fixed, 702=percent",
    )
    value = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        db_comment="Coupon value: would be calculated to amount by coupon type",
    )
    status = models.SmallIntegerField(
        choices=UsageStatus.choices,
        default=UsageStatus.AVAILABLE,
        db_comment=(
            "Status of the record: 901=inactive, 902=active, 903=used, 904=timeout, "
            "905=reserved, 906=released"
        ),
    )
    deleted = models.SmallIntegerField(
        choices=Deleted.choices,
        default=Deleted.ACTIVE,
        db_comment="Deletion flag: 0=active, 1=deleted",
    )
    created_at = LegacyDateTimeField(auto_now_add=True, db_comment="Creation timestamp")
    updated_at = LegacyDateTimeField(auto_now=True, db_comment="Update timestamp")
    # Added by this service.
    discount_amount = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        db_default=Decimal("0.00"),
        db_comment="What the code took off the order, in its currency",
    )
    currency = models.CharField(
        max_length=3,
        blank=True,
        default="",
        db_default="",
        db_comment="ISO 4217 currency of the order, lower case",
    )

    class Meta:
        db_table = "promo_coupon_usages"
        db_table_comment = "Promo coupon usages"
        verbose_name = "coupon code use"
        indexes = [
            LegacyIndex(
                fields=["coupon_usage_bid"], name="ix_promo_coupon_usages_coupon_usage_bid"
            ),
            LegacyIndex(fields=["coupon_bid"], name="ix_promo_coupon_usages_coupon_bid"),
            LegacyIndex(fields=["user_bid"], name="ix_promo_coupon_usages_user_bid"),
            LegacyIndex(fields=["shifu_bid"], name="ix_promo_coupon_usages_shifu_bid"),
            LegacyIndex(fields=["order_bid"], name="ix_promo_coupon_usages_order_bid"),
            LegacyIndex(fields=["code"], name="ix_promo_coupon_usages_code"),
            # A user's uses of a batch (the per-user cap), read under the batch's lock.
            LegacyIndex(
                fields=["coupon_bid", "user_bid", "status"],
                name="ix_promo_coupon_usages_coupon_user",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Campaign(models.Model):
    """A promotion: a discount on one product (``shifu_bid``) during a window, applied
    to eligible orders without a code."""

    promo_bid = models.CharField(
        max_length=36, default=new_bid, db_comment="Promotion business identifier"
    )
    shifu_bid = models.CharField(max_length=36, db_comment="Shifu business identifier")
    name = models.CharField(max_length=255, db_comment="Promotion name")
    description = models.TextField(blank=True, default="", db_comment="Promotion description")
    apply_type = models.SmallIntegerField(
        choices=CampaignApplyType.choices,
        default=CampaignApplyType.AUTO,
        db_comment=(
            "Apply/join type: 2101=auto(eligible users get it automatically), "
            "2102=event(granted on specific events), 2103=manual(granted manually)"
        ),
    )
    status = models.SmallIntegerField(
        choices=CampaignStatus.choices,
        default=CampaignStatus.ACTIVE,
        db_comment="Status: 0=inactive, 1=active",
    )
    start_at = LegacyDateTimeField(db_comment="Promotion start time(inclusive)")
    end_at = LegacyDateTimeField(
        db_comment="Promotion end time(recommended exclusive): start_at <= now < end_at"
    )
    discount_type = models.SmallIntegerField(
        choices=DiscountType.choices,
        default=DiscountType.PERCENT,
        db_comment="Discount type: 701=fixed, 702=percent",
    )
    value = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        db_comment=(
            "Discount value: interpreted by discount_type(fixed = amount off; "
            "percent = percentage off)"
        ),
    )
    channel = models.CharField(
        max_length=36,
        blank=True,
        default="",
        db_comment="Promotion channel(e.g., web/app/partner; business-defined)",
    )
    filter = models.TextField(
        blank=True,
        default="{}",
        db_comment=(
            "Promotion filter: JSON string for user/shifu targeting;{} means no restriction."
        ),
    )
    deleted = models.SmallIntegerField(
        choices=Deleted.choices,
        default=Deleted.ACTIVE,
        db_comment="Deletion flag: 0=active, 1=deleted",
    )
    created_at = LegacyDateTimeField(auto_now_add=True, db_comment="Creation timestamp")
    created_user_bid = models.CharField(
        max_length=36, blank=True, default="", db_comment="Creator user business identifier"
    )
    updated_at = LegacyDateTimeField(auto_now=True, db_comment="Last update timestamp")
    updated_user_bid = models.CharField(
        max_length=36, blank=True, default="", db_comment="Last updater user business identifier"
    )
    # Added by this service.
    currency = models.CharField(
        max_length=3,
        blank=True,
        default="",
        db_default="",
        db_comment="ISO 4217 currency of a fixed value, lower case; empty for percent",
    )
    stackable = models.BooleanField(
        default=False,
        db_default=False,
        db_comment="Combines with the product's other stackable campaigns",
    )

    class Meta:
        db_table = "promo_promos"
        db_table_comment = (
            "Promotion campaign definition table. Defines a discount campaign for a specific "
            "Shifu (join/apply type, time window, discount configuration, channel, and "
            "targeting filter). Stores configuration only; user participation/claim/redemption "
            "records are stored in table promo_redemptions."
        )
        verbose_name = "promotion"
        indexes = [
            LegacyIndex(fields=["promo_bid"], name="ix_promo_promos_promo_bid"),
            LegacyIndex(fields=["shifu_bid"], name="ix_promo_promos_shifu_bid"),
            LegacyIndex(fields=["status"], name="ix_promo_promos_status"),
            LegacyIndex(fields=["start_at"], name="ix_promo_promos_start_at"),
            LegacyIndex(fields=["end_at"], name="ix_promo_promos_end_at"),
            LegacyIndex(fields=["deleted"], name="ix_promo_promos_deleted"),
            LegacyIndex(fields=["created_user_bid"], name="ix_promo_promos_created_user_bid"),
            LegacyIndex(fields=["updated_user_bid"], name="ix_promo_promos_updated_user_bid"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignRedemption(models.Model):
    """What one campaign took off one order (voided when the order dies unpaid)."""

    redemption_bid = models.CharField(
        max_length=36, default=new_bid, db_comment="Promotion application business identifier"
    )
    promo_bid = models.CharField(max_length=36, db_comment="Promotion business identifier")
    order_bid = models.CharField(max_length=36, db_comment="Order business identifier")
    user_bid = models.CharField(max_length=36, db_comment="User business identifier")
    shifu_bid = models.CharField(max_length=36, db_comment="Shifu business identifier")
    promo_name = models.CharField(max_length=255, db_comment="Promotion name snapshot")
    discount_type = models.SmallIntegerField(
        choices=DiscountType.choices,
        default=DiscountType.FIXED,
        db_comment="Discount type snapshot: 701=fixed, 702=percent",
    )
    value = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        db_comment="Discount value snapshot: interpreted by discount_type",
    )
    discount_amount = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        db_comment=(
            "Discount amount actually applied to this order (computed result for this redemption)"
        ),
    )
    status = models.SmallIntegerField(
        choices=RedemptionStatus.choices,
        default=RedemptionStatus.APPLIED,
        db_comment="Status: 4101=applied, 4102=voided",
    )
    deleted = models.SmallIntegerField(
        choices=Deleted.choices,
        default=Deleted.ACTIVE,
        db_comment="Deletion flag: 0=active, 1=deleted",
    )
    created_at = LegacyDateTimeField(auto_now_add=True, db_comment="Creation timestamp")
    updated_at = LegacyDateTimeField(auto_now=True, db_comment="Last update timestamp")
    # Added by this service.
    currency = models.CharField(
        max_length=3,
        blank=True,
        default="",
        db_default="",
        db_comment="ISO 4217 currency of the order, lower case",
    )

    class Meta:
        db_table = "promo_redemptions"
        db_table_comment = (
            "Promotion campaign redemption ledger. Records each time a user redeems/applies a "
            "promo campaign to an order, including snapshot fields (campaign name/discount "
            "type/value) and the computed discount amount. This table is transactional/"
            "immutable-by-intent; campaign definitions live in promo_promos."
        )
        verbose_name = "promotion redemption"
        indexes = [
            LegacyIndex(fields=["redemption_bid"], name="ix_promo_redemptions_redemption_bid"),
            LegacyIndex(fields=["promo_bid"], name="ix_promo_redemptions_promo_bid"),
            LegacyIndex(fields=["order_bid"], name="ix_promo_redemptions_order_bid"),
            LegacyIndex(fields=["user_bid"], name="ix_promo_redemptions_user_bid"),
            LegacyIndex(fields=["shifu_bid"], name="ix_promo_redemptions_shifu_bid"),
            LegacyIndex(fields=["status"], name="ix_promo_redemptions_status"),
            LegacyIndex(fields=["deleted"], name="ix_promo_redemptions_deleted"),
        ]

    def __str__(self) -> str:
        return f"{self.promo_name} on {self.order_bid}"


class IssuedCode(models.Model):
    """Every code this service has issued, once: the unique index makes two batches
    made at the same moment with one code impossible (the old tables have no such
    index, and may hold duplicates of their own, which are left as they are)."""

    code = models.CharField(max_length=36, unique=True, db_comment="Coupon code")
    coupon_bid = models.CharField(max_length=36, db_comment="Batch that issued it")
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")

    class Meta:
        db_table = "promo_issued_codes"
        db_table_comment = "Coupon codes issued by this service, each once"

    def __str__(self) -> str:
        return self.code
