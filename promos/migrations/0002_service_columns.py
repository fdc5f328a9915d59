"""What this service adds to the old promo tables: currencies, the per-user cap, the
stacking and refund settings, what each code took off (columns, each with a database
default, so no row is rewritten), and indexes to find a code and a user's uses of a
batch."""

from decimal import Decimal

from django.db import migrations, models

import payments_project.db


class Migration(migrations.Migration):
    dependencies = [("promos", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="currency",
            field=models.CharField(
                blank=True,
                db_comment="ISO 4217 currency of a fixed value, lower case; empty for percent",
                db_default="",
                default="",
                max_length=3,
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="stackable",
            field=models.BooleanField(
                db_comment="Combines with the product's other stackable campaigns",
                db_default=False,
                default=False,
            ),
        ),
        migrations.AddField(
            model_name="campaignredemption",
            name="currency",
            field=models.CharField(
                blank=True,
                db_comment="ISO 4217 currency of the order, lower case",
                db_default="",
                default="",
                max_length=3,
            ),
        ),
        migrations.AddField(
            model_name="couponbatch",
            name="currency",
            field=models.CharField(
                blank=True,
                db_comment="ISO 4217 currency of a fixed value, lower case; empty for percent",
                db_default="",
                default="",
                max_length=3,
            ),
        ),
        migrations.AddField(
            model_name="couponbatch",
            name="per_user_limit",
            field=models.PositiveIntegerField(
                db_comment="Uses a user may hold at once (reserved or used)",
                db_default=1,
                default=1,
            ),
        ),
        migrations.AddField(
            model_name="couponbatch",
            name="stacks_with_promotions",
            field=models.BooleanField(
                db_comment="Applies on top of a promotion's discount",
                db_default=False,
                default=False,
            ),
        ),
        migrations.AddField(
            model_name="couponbatch",
            name="release_on_refund",
            field=models.BooleanField(
                db_comment="A full refund gives the use back", db_default=True, default=True
            ),
        ),
        migrations.AddField(
            model_name="couponusage",
            name="discount_amount",
            field=models.DecimalField(
                db_comment="What the code took off the order, in its currency",
                db_default=Decimal("0.00"),
                decimal_places=2,
                default=Decimal("0.00"),
                max_digits=10,
            ),
        ),
        migrations.AddField(
            model_name="couponusage",
            name="currency",
            field=models.CharField(
                blank=True,
                db_comment="ISO 4217 currency of the order, lower case",
                db_default="",
                default="",
                max_length=3,
            ),
        ),
        migrations.AlterField(
            model_name="couponusage",
            name="status",
            field=models.SmallIntegerField(
                choices=[
                    (901, "inactive"),
                    (902, "available"),
                    (903, "used"),
                    (904, "timed out"),
                    (905, "reserved"),
                    (906, "released"),
                ],
                db_comment="Status of the record: 901=inactive, 902=active, 903=used, 904=timeout, 905=reserved, 906=released",
                default=902,
            ),
        ),
        migrations.AddIndex(
            model_name="couponusage",
            index=payments_project.db.LegacyIndex(
                fields=["code"], name="ix_promo_coupon_usages_code"
            ),
        ),
        migrations.AddIndex(
            model_name="couponusage",
            index=payments_project.db.LegacyIndex(
                fields=["coupon_bid", "user_bid", "status"],
                name="ix_promo_coupon_usages_coupon_user",
            ),
        ),
    ]
