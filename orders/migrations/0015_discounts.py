"""Discounts on orders: the amount taken off the list price, and a kind of attention
for a coupon that a late payment cannot take back cleanly."""

from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0014_order_status_revoked"),
        ("promos", "0002_service_columns"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="discount_price",
            field=models.DecimalField(
                db_comment="Promotions and coupon taken off payable_price, in the order currency",
                db_default=Decimal("0.00"),
                decimal_places=2,
                default=Decimal("0.00"),
                max_digits=10,
            ),
        ),
        migrations.AlterField(
            model_name="attention",
            name="kind",
            field=models.CharField(
                choices=[
                    ("duplicate_purchase", "paid twice for one product"),
                    ("refund_failed", "refund failed"),
                    ("refund_reversed", "refund failed after it succeeded"),
                    ("refund_conflict", "refund succeeded after it failed"),
                    ("unsettled", "reconciliation cannot settle it"),
                    ("coupon_conflict", "paid with a coupon taken meanwhile"),
                ],
                db_comment="What",
                max_length=32,
            ),
        ),
    ]
