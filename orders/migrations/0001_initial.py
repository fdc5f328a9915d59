"""The legacy ``order_orders`` table, exactly as the old order system created it.

An existing database already has it, at either version of the old system's schema: the
operation adopts it (see ``payments_project.adoption``) and creates it only on a new
database.
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
                name="Order",
                fields=[
                    (
                        "id",
                        models.BigAutoField(
                            auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                        ),
                    ),
                    (
                        "order_bid",
                        models.CharField(
                            db_comment="Order business identifier",
                            default=payments_project.db.new_bid,
                            max_length=36,
                        ),
                    ),
                    (
                        "product_bid",
                        models.CharField(
                            db_column="shifu_bid",
                            db_comment="Shifu business identifier",
                            max_length=36,
                        ),
                    ),
                    (
                        "user_bid",
                        models.CharField(db_comment="User business identifier", max_length=36),
                    ),
                    (
                        "payable_price",
                        models.DecimalField(
                            db_comment="Shifu original price", decimal_places=2, max_digits=10
                        ),
                    ),
                    (
                        "paid_price",
                        models.DecimalField(
                            db_comment="Paid price",
                            decimal_places=2,
                            default=Decimal("0.00"),
                            max_digits=10,
                        ),
                    ),
                    (
                        "status",
                        models.SmallIntegerField(
                            choices=[
                                (501, "init"),
                                (502, "paid"),
                                (503, "refunded"),
                                (504, "unpaid"),
                                (505, "timeout"),
                            ],
                            db_comment="Status of the order: 501=init, 502=paid, 503=refunded, 504=unpaid, 505=timeout",
                            default=501,
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
                            auto_now_add=True, db_comment="Creation time"
                        ),
                    ),
                    (
                        "updated_at",
                        payments_project.db.LegacyDateTimeField(
                            auto_now=True, db_comment="Update time"
                        ),
                    ),
                ],
                options={
                    "db_table": "order_orders",
                    "db_table_comment": "Order orders",
                    "indexes": [
                        payments_project.db.LegacyIndex(
                            fields=["order_bid"], name="ix_order_orders_order_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["product_bid"], name="ix_order_orders_shifu_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["user_bid"], name="ix_order_orders_user_bid"
                        ),
                    ],
                },
            )
        ),
    ]
