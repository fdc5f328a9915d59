"""What this service adds to orders: currency, refunded total, products and refunds.

``currency`` and ``refunded_price`` are added NOT NULL with database defaults ('cny',
0), which fills every existing row at once (instantly on MariaDB and MySQL 8) and keeps
rows that the legacy system inserts valid. New indexes serve the date filters of the
admin, expiry and reconciliation.
"""

from decimal import Decimal

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import payments_project.db


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0004_payment_channel_not_null"),
        ("payments", "0002_stripeorder"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="currency",
            field=models.CharField(
                db_comment="ISO 4217 currency of the prices, lower case",
                db_default="cny",
                default="cny",
                max_length=3,
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="refunded_price",
            field=models.DecimalField(
                db_comment="Refunded total, in the order currency",
                db_default=Decimal("0.00"),
                decimal_places=2,
                default=Decimal("0.00"),
                max_digits=10,
            ),
        ),
        migrations.AlterField(
            model_name="order",
            name="status",
            field=models.SmallIntegerField(
                choices=[
                    (501, "init"),
                    (502, "paid"),
                    (503, "refunded"),
                    (504, "unpaid"),
                    (505, "timeout"),
                    (506, "cancelled"),
                ],
                db_comment="Status of the order: 501=init, 502=paid, 503=refunded, 504=unpaid, 505=timeout, 506=cancelled",
                default=501,
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=payments_project.db.LegacyIndex(
                fields=["created_at"], name="ix_order_orders_created_at"
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=payments_project.db.LegacyIndex(
                fields=["status", "created_at"], name="ix_order_orders_status_created_at"
            ),
        ),
        migrations.CreateModel(
            name="Product",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "product_bid",
                    models.CharField(
                        db_comment="Product business identifier",
                        default=payments_project.db.new_bid,
                        max_length=36,
                        unique=True,
                    ),
                ),
                ("name", models.CharField(db_comment="Name shown to buyers", max_length=255)),
                ("description", models.TextField(blank=True, db_comment="Description", default="")),
                (
                    "price",
                    models.DecimalField(
                        db_comment="Price in major units of the currency",
                        decimal_places=2,
                        max_digits=10,
                    ),
                ),
                (
                    "currency",
                    models.CharField(
                        db_comment="ISO 4217 currency, lower case", default="cny", max_length=3
                    ),
                ),
                ("active", models.BooleanField(db_comment="On sale", default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_comment="Creation time")),
                ("updated_at", models.DateTimeField(auto_now=True, db_comment="Update time")),
            ],
            options={
                "db_table": "order_products",
                "db_table_comment": "Courses on sale",
                "indexes": [
                    payments_project.db.LegacyIndex(
                        fields=["active", "name"], name="ix_order_products_active_name"
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("price__gte", 0)),
                        name="ck_order_products_price_not_negative",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Refund",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "refund_bid",
                    models.CharField(
                        db_comment="Refund business identifier",
                        default=payments_project.db.new_bid,
                        max_length=36,
                        unique=True,
                    ),
                ),
                (
                    "payment_channel",
                    models.CharField(db_comment="Channel that refunds", max_length=50),
                ),
                (
                    "attempt_bid",
                    models.CharField(
                        blank=True,
                        db_comment="Channel attempt that is refunded",
                        default="",
                        max_length=36,
                    ),
                ),
                (
                    "amount",
                    models.DecimalField(
                        db_comment="Refund amount in major units", decimal_places=2, max_digits=10
                    ),
                ),
                (
                    "currency",
                    models.CharField(db_comment="ISO 4217 currency, lower case", max_length=3),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                        ],
                        db_comment="pending, succeeded or failed",
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("reason", models.CharField(db_comment="Why the refund was made", max_length=255)),
                (
                    "provider_refund_id",
                    models.CharField(
                        blank=True,
                        db_comment="Refund id at the provider",
                        max_length=255,
                        null=True,
                    ),
                ),
                (
                    "failure_code",
                    models.CharField(
                        blank=True, db_comment="Failure code", default="", max_length=255
                    ),
                ),
                (
                    "failure_message",
                    models.TextField(blank=True, db_comment="Failure message", default=""),
                ),
                (
                    "raw",
                    models.JSONField(
                        blank=True, db_comment="Raw provider refund object", null=True
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, db_comment="Creation time")),
                ("updated_at", models.DateTimeField(auto_now=True, db_comment="Update time")),
                (
                    "settled_at",
                    models.DateTimeField(
                        blank=True, db_comment="When it succeeded or failed", null=True
                    ),
                ),
                (
                    "order",
                    models.ForeignKey(
                        db_comment="Refunded order",
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="refunds",
                        to="orders.order",
                    ),
                ),
                (
                    "requested_by",
                    models.ForeignKey(
                        blank=True,
                        db_comment="Staff user who asked for the refund",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "order_refunds",
                "db_table_comment": "Refunds of orders",
                "indexes": [
                    payments_project.db.LegacyIndex(
                        fields=["status", "created_at"], name="ix_order_refunds_status_created_at"
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("amount__gt", 0)),
                        name="ck_order_refunds_amount_positive",
                    ),
                    models.UniqueConstraint(
                        fields=("payment_channel", "provider_refund_id"),
                        name="uq_order_refunds_provider_refund_id",
                    ),
                ],
            },
        ),
    ]
