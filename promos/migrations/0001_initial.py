"""The old system's four promo tables, exactly as it created them.

A database that has them adopts them; one that lacks them gets them (``AdoptOrCreate``).
"""

from decimal import Decimal

from django.db import migrations, models

import payments_project.db
from payments_project.adoption import AdoptOrCreate


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        AdoptOrCreate(
            migrations.CreateModel(
                name="Campaign",
                fields=[
                    (
                        "id",
                        models.BigAutoField(
                            auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                        ),
                    ),
                    (
                        "promo_bid",
                        models.CharField(
                            db_comment="Promotion business identifier",
                            default=payments_project.db.new_bid,
                            max_length=36,
                        ),
                    ),
                    (
                        "shifu_bid",
                        models.CharField(db_comment="Shifu business identifier", max_length=36),
                    ),
                    ("name", models.CharField(db_comment="Promotion name", max_length=255)),
                    (
                        "description",
                        models.TextField(
                            blank=True, db_comment="Promotion description", default=""
                        ),
                    ),
                    (
                        "apply_type",
                        models.SmallIntegerField(
                            choices=[(2101, "automatic"), (2102, "on an event"), (2103, "manual")],
                            db_comment="Apply/join type: 2101=auto(eligible users get it automatically), 2102=event(granted on specific events), 2103=manual(granted manually)",
                            default=2101,
                        ),
                    ),
                    (
                        "status",
                        models.SmallIntegerField(
                            choices=[(0, "inactive"), (1, "active")],
                            db_comment="Status: 0=inactive, 1=active",
                            default=1,
                        ),
                    ),
                    (
                        "start_at",
                        payments_project.db.LegacyDateTimeField(
                            db_comment="Promotion start time(inclusive)"
                        ),
                    ),
                    (
                        "end_at",
                        payments_project.db.LegacyDateTimeField(
                            db_comment="Promotion end time(recommended exclusive): start_at <= now < end_at"
                        ),
                    ),
                    (
                        "discount_type",
                        models.SmallIntegerField(
                            choices=[(701, "fixed"), (702, "percent")],
                            db_comment="Discount type: 701=fixed, 702=percent",
                            default=702,
                        ),
                    ),
                    (
                        "value",
                        models.DecimalField(
                            db_comment="Discount value: interpreted by discount_type(fixed = amount off; percent = percentage off)",
                            decimal_places=2,
                            default=Decimal("0.00"),
                            max_digits=10,
                        ),
                    ),
                    (
                        "channel",
                        models.CharField(
                            blank=True,
                            db_comment="Promotion channel(e.g., web/app/partner; business-defined)",
                            default="",
                            max_length=36,
                        ),
                    ),
                    (
                        "filter",
                        models.TextField(
                            blank=True,
                            db_comment="Promotion filter: JSON string for user/shifu targeting;{} means no restriction.",
                            default="{}",
                        ),
                    ),
                    (
                        "deleted",
                        models.SmallIntegerField(
                            choices=[(0, "active"), (1, "deleted")],
                            db_comment="Deletion flag: 0=active, 1=deleted",
                            default=0,
                        ),
                    ),
                    (
                        "created_at",
                        payments_project.db.LegacyDateTimeField(
                            auto_now_add=True, db_comment="Creation timestamp"
                        ),
                    ),
                    (
                        "created_user_bid",
                        models.CharField(
                            blank=True,
                            db_comment="Creator user business identifier",
                            default="",
                            max_length=36,
                        ),
                    ),
                    (
                        "updated_at",
                        payments_project.db.LegacyDateTimeField(
                            auto_now=True, db_comment="Last update timestamp"
                        ),
                    ),
                    (
                        "updated_user_bid",
                        models.CharField(
                            blank=True,
                            db_comment="Last updater user business identifier",
                            default="",
                            max_length=36,
                        ),
                    ),
                ],
                options={
                    "verbose_name": "promotion",
                    "db_table": "promo_promos",
                    "db_table_comment": "Promotion campaign definition table. Defines a discount campaign for a specific Shifu (join/apply type, time window, discount configuration, channel, and targeting filter). Stores configuration only; user participation/claim/redemption records are stored in table promo_redemptions.",
                    "indexes": [
                        payments_project.db.LegacyIndex(
                            fields=["promo_bid"], name="ix_promo_promos_promo_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["shifu_bid"], name="ix_promo_promos_shifu_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["status"], name="ix_promo_promos_status"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["start_at"], name="ix_promo_promos_start_at"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["end_at"], name="ix_promo_promos_end_at"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["deleted"], name="ix_promo_promos_deleted"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["created_user_bid"], name="ix_promo_promos_created_user_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["updated_user_bid"], name="ix_promo_promos_updated_user_bid"
                        ),
                    ],
                },
            )
        ),
        AdoptOrCreate(
            migrations.CreateModel(
                name="CampaignRedemption",
                fields=[
                    (
                        "id",
                        models.BigAutoField(
                            auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                        ),
                    ),
                    (
                        "redemption_bid",
                        models.CharField(
                            db_comment="Promotion application business identifier",
                            default=payments_project.db.new_bid,
                            max_length=36,
                        ),
                    ),
                    (
                        "promo_bid",
                        models.CharField(db_comment="Promotion business identifier", max_length=36),
                    ),
                    (
                        "order_bid",
                        models.CharField(db_comment="Order business identifier", max_length=36),
                    ),
                    (
                        "user_bid",
                        models.CharField(db_comment="User business identifier", max_length=36),
                    ),
                    (
                        "shifu_bid",
                        models.CharField(db_comment="Shifu business identifier", max_length=36),
                    ),
                    (
                        "promo_name",
                        models.CharField(db_comment="Promotion name snapshot", max_length=255),
                    ),
                    (
                        "discount_type",
                        models.SmallIntegerField(
                            choices=[(701, "fixed"), (702, "percent")],
                            db_comment="Discount type snapshot: 701=fixed, 702=percent",
                            default=701,
                        ),
                    ),
                    (
                        "value",
                        models.DecimalField(
                            db_comment="Discount value snapshot: interpreted by discount_type",
                            decimal_places=2,
                            default=Decimal("0.00"),
                            max_digits=10,
                        ),
                    ),
                    (
                        "discount_amount",
                        models.DecimalField(
                            db_comment="Discount amount actually applied to this order (computed result for this redemption)",
                            decimal_places=2,
                            default=Decimal("0.00"),
                            max_digits=10,
                        ),
                    ),
                    (
                        "status",
                        models.SmallIntegerField(
                            choices=[(4101, "applied"), (4102, "voided")],
                            db_comment="Status: 4101=applied, 4102=voided",
                            default=4101,
                        ),
                    ),
                    (
                        "deleted",
                        models.SmallIntegerField(
                            choices=[(0, "active"), (1, "deleted")],
                            db_comment="Deletion flag: 0=active, 1=deleted",
                            default=0,
                        ),
                    ),
                    (
                        "created_at",
                        payments_project.db.LegacyDateTimeField(
                            auto_now_add=True, db_comment="Creation timestamp"
                        ),
                    ),
                    (
                        "updated_at",
                        payments_project.db.LegacyDateTimeField(
                            auto_now=True, db_comment="Last update timestamp"
                        ),
                    ),
                ],
                options={
                    "verbose_name": "promotion redemption",
                    "db_table": "promo_redemptions",
                    "db_table_comment": "Promotion campaign redemption ledger. Records each time a user redeems/applies a promo campaign to an order, including snapshot fields (campaign name/discount type/value) and the computed discount amount. This table is transactional/immutable-by-intent; campaign definitions live in promo_promos.",
                    "indexes": [
                        payments_project.db.LegacyIndex(
                            fields=["redemption_bid"], name="ix_promo_redemptions_redemption_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["promo_bid"], name="ix_promo_redemptions_promo_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["order_bid"], name="ix_promo_redemptions_order_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["user_bid"], name="ix_promo_redemptions_user_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["shifu_bid"], name="ix_promo_redemptions_shifu_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["status"], name="ix_promo_redemptions_status"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["deleted"], name="ix_promo_redemptions_deleted"
                        ),
                    ],
                },
            )
        ),
        AdoptOrCreate(
            migrations.CreateModel(
                name="CouponBatch",
                fields=[
                    (
                        "id",
                        models.BigAutoField(
                            auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                        ),
                    ),
                    (
                        "coupon_bid",
                        models.CharField(
                            db_comment="Coupon business identifier",
                            default=payments_project.db.new_bid,
                            max_length=36,
                        ),
                    ),
                    ("name", models.CharField(db_comment="Coupon batch name", max_length=255)),
                    (
                        "code",
                        models.CharField(
                            blank=True, db_comment="Coupon code", default="", max_length=36
                        ),
                    ),
                    (
                        "discount_type",
                        models.SmallIntegerField(
                            choices=[(701, "fixed"), (702, "percent")],
                            db_comment="Coupon type: 701=fixed, 702=percent",
                            default=701,
                        ),
                    ),
                    (
                        "usage_type",
                        models.SmallIntegerField(
                            choices=[(801, "shared"), (802, "single")],
                            db_comment="Coupon apply type: 801=one coupon code for multiple times, 802=one coupon code for one time",
                            default=801,
                        ),
                    ),
                    (
                        "value",
                        models.DecimalField(
                            db_comment="Coupon value: would be calculated to amount by coupon type",
                            decimal_places=2,
                            default=Decimal("0.00"),
                            max_digits=10,
                        ),
                    ),
                    (
                        "start",
                        payments_project.db.LegacyDateTimeField(db_comment="Coupon start time"),
                    ),
                    ("end", payments_project.db.LegacyDateTimeField(db_comment="Coupon end time")),
                    (
                        "channel",
                        models.CharField(
                            blank=True, db_comment="Coupon channel", default="", max_length=36
                        ),
                    ),
                    (
                        "filter",
                        models.TextField(
                            blank=True,
                            db_comment="Coupon filter: would be used to filter user and shifu",
                            default="{}",
                        ),
                    ),
                    (
                        "total_count",
                        models.BigIntegerField(db_comment="Coupon total count", default=0),
                    ),
                    (
                        "used_count",
                        models.BigIntegerField(db_comment="Coupon used count", default=0),
                    ),
                    (
                        "status",
                        models.SmallIntegerField(
                            choices=[(0, "inactive"), (1, "active")],
                            db_comment="Status of the discount: 0=inactive, 1=active",
                            default=1,
                        ),
                    ),
                    (
                        "deleted",
                        models.SmallIntegerField(
                            choices=[(0, "active"), (1, "deleted")],
                            db_comment="Deletion flag: 0=active, 1=deleted",
                            default=0,
                        ),
                    ),
                    (
                        "created_at",
                        payments_project.db.LegacyDateTimeField(
                            auto_now_add=True, db_comment="Creation timestamp"
                        ),
                    ),
                    (
                        "created_user_bid",
                        models.CharField(
                            blank=True,
                            db_comment="Creator user business identifier",
                            default="",
                            max_length=36,
                        ),
                    ),
                    (
                        "updated_at",
                        payments_project.db.LegacyDateTimeField(
                            auto_now=True, db_comment="Update timestamp"
                        ),
                    ),
                    (
                        "updated_user_bid",
                        models.CharField(
                            blank=True,
                            db_comment="Last updater user business identifier",
                            default="",
                            max_length=36,
                        ),
                    ),
                ],
                options={
                    "verbose_name": "coupon batch",
                    "verbose_name_plural": "coupon batches",
                    "db_table": "promo_coupons",
                    "db_table_comment": "Promo coupons",
                    "indexes": [
                        payments_project.db.LegacyIndex(
                            fields=["coupon_bid"], name="ix_promo_coupons_coupon_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["code"], name="ix_promo_coupons_code"
                        ),
                    ],
                },
            )
        ),
        AdoptOrCreate(
            migrations.CreateModel(
                name="CouponUsage",
                fields=[
                    (
                        "id",
                        models.BigAutoField(
                            auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                        ),
                    ),
                    (
                        "coupon_usage_bid",
                        models.CharField(
                            db_comment="Coupon usage business identifier",
                            default=payments_project.db.new_bid,
                            max_length=36,
                        ),
                    ),
                    (
                        "coupon_bid",
                        models.CharField(db_comment="Coupon business identifier", max_length=36),
                    ),
                    (
                        "name",
                        models.CharField(
                            blank=True, db_comment="Coupon name", default="", max_length=255
                        ),
                    ),
                    (
                        "user_bid",
                        models.CharField(
                            blank=True,
                            db_comment="User business identifier",
                            default="",
                            max_length=36,
                        ),
                    ),
                    (
                        "shifu_bid",
                        models.CharField(
                            blank=True,
                            db_comment="Shifu business identifier",
                            default="",
                            max_length=36,
                        ),
                    ),
                    (
                        "order_bid",
                        models.CharField(
                            blank=True,
                            db_comment="Order business identifier",
                            default="",
                            max_length=36,
                        ),
                    ),
                    ("code", models.CharField(db_comment="Coupon code", max_length=36)),
                    (
                        "discount_type",
                        models.SmallIntegerField(
                            choices=[(701, "fixed"), (702, "percent")],
                            db_comment="Coupon Type: 701=fixed, 702=percent",
                            default=701,
                        ),
                    ),
                    (
                        "value",
                        models.DecimalField(
                            db_comment="Coupon value: would be calculated to amount by coupon type",
                            decimal_places=2,
                            default=Decimal("0.00"),
                            max_digits=10,
                        ),
                    ),
                    (
                        "status",
                        models.SmallIntegerField(
                            choices=[
                                (901, "inactive"),
                                (902, "available"),
                                (903, "used"),
                                (904, "timed out"),
                                (905, "reserved"),
                                (906, "released"),
                            ],
                            db_comment="Status of the record: 901=inactive, 902=active, 903=used, 904=timeout",
                            default=902,
                        ),
                    ),
                    (
                        "deleted",
                        models.SmallIntegerField(
                            choices=[(0, "active"), (1, "deleted")],
                            db_comment="Deletion flag: 0=active, 1=deleted",
                            default=0,
                        ),
                    ),
                    (
                        "created_at",
                        payments_project.db.LegacyDateTimeField(
                            auto_now_add=True, db_comment="Creation timestamp"
                        ),
                    ),
                    (
                        "updated_at",
                        payments_project.db.LegacyDateTimeField(
                            auto_now=True, db_comment="Update timestamp"
                        ),
                    ),
                ],
                options={
                    "verbose_name": "coupon code use",
                    "db_table": "promo_coupon_usages",
                    "db_table_comment": "Promo coupon usages",
                    "indexes": [
                        payments_project.db.LegacyIndex(
                            fields=["coupon_usage_bid"],
                            name="ix_promo_coupon_usages_coupon_usage_bid",
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["coupon_bid"], name="ix_promo_coupon_usages_coupon_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["user_bid"], name="ix_promo_coupon_usages_user_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["shifu_bid"], name="ix_promo_coupon_usages_shifu_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["order_bid"], name="ix_promo_coupon_usages_order_bid"
                        ),
                    ],
                },
            )
        ),
    ]
