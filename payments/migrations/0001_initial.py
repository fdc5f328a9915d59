"""The legacy ``order_pingxx_orders`` table, exactly as the old order system created it.

An existing database already has it, at either version of the old system's schema: the
operation adopts it (see ``payments_project.adoption``) and creates it only on a new
database.
"""

import django.utils.timezone
from django.db import migrations, models

import payments_project.db
from payments_project.adoption import AdoptOrCreate


class Migration(migrations.Migration):
    initial = True

    dependencies = [("orders", "0001_initial")]

    operations = [
        AdoptOrCreate(
            migrations.CreateModel(
                name="PingxxOrder",
                fields=[
                    (
                        "id",
                        models.BigAutoField(
                            auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                        ),
                    ),
                    (
                        "pingxx_order_bid",
                        models.CharField(
                            db_comment="Pingxx order business identifier",
                            default=payments_project.db.new_bid,
                            max_length=36,
                        ),
                    ),
                    (
                        "user_bid",
                        models.CharField(db_comment="User business identifier", max_length=36),
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
                        "order_bid",
                        models.CharField(db_comment="Order business identifier", max_length=36),
                    ),
                    (
                        "transaction_no",
                        models.CharField(db_comment="Pingxx transaction number", max_length=36),
                    ),
                    ("app_id", models.CharField(db_comment="Pingxx app identifier", max_length=36)),
                    ("channel", models.CharField(db_comment="Payment channel", max_length=36)),
                    ("amount", models.BigIntegerField(db_comment="Payment amount")),
                    (
                        "currency",
                        models.CharField(db_comment="Currency", default="CNY", max_length=36),
                    ),
                    ("subject", models.CharField(db_comment="Payment subject", max_length=255)),
                    ("body", models.CharField(db_comment="Payment body", max_length=255)),
                    ("client_ip", models.CharField(db_comment="Client IP", max_length=255)),
                    ("extra", models.TextField(db_comment="Extra information", default="{}")),
                    (
                        "status",
                        models.SmallIntegerField(
                            choices=[
                                (0, "unpaid"),
                                (1, "paid"),
                                (2, "refunded"),
                                (3, "closed"),
                                (4, "failed"),
                            ],
                            db_comment="Status of the order: 0=unpaid, 1=paid, 2=refunded, 3=closed, 4=failed",
                            default=0,
                        ),
                    ),
                    (
                        "charge_id",
                        models.CharField(
                            db_comment="Charge identifier", default="", max_length=255
                        ),
                    ),
                    (
                        "paid_at",
                        payments_project.db.LegacyDateTimeField(
                            db_comment="Payment time", default=django.utils.timezone.now
                        ),
                    ),
                    (
                        "refunded_at",
                        payments_project.db.LegacyDateTimeField(
                            db_comment="Refund time", default=django.utils.timezone.now
                        ),
                    ),
                    (
                        "closed_at",
                        payments_project.db.LegacyDateTimeField(
                            db_comment="Close time", default=django.utils.timezone.now
                        ),
                    ),
                    (
                        "failed_at",
                        payments_project.db.LegacyDateTimeField(
                            db_comment="Failed time", default=django.utils.timezone.now
                        ),
                    ),
                    (
                        "refund_id",
                        models.CharField(
                            db_comment="Refund identifier", default="", max_length=255
                        ),
                    ),
                    (
                        "failure_code",
                        models.CharField(db_comment="Failure code", default="", max_length=255),
                    ),
                    (
                        "failure_msg",
                        models.CharField(db_comment="Failure message", default="", max_length=255),
                    ),
                    (
                        "charge_object",
                        models.TextField(db_comment="Pingxx raw charge object", default=""),
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
                    "db_table": "order_pingxx_orders",
                    "db_table_comment": "Order pingxx orders",
                    "indexes": [
                        payments_project.db.LegacyIndex(
                            fields=["app_id"], name="ix_order_pingxx_orders_app_id"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["charge_id"], name="ix_order_pingxx_orders_charge_id"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["order_bid"], name="ix_order_pingxx_orders_order_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["pingxx_order_bid"],
                            name="ix_order_pingxx_orders_pingxx_order_bid",
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["refund_id"], name="ix_order_pingxx_orders_refund_id"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["product_bid"], name="ix_order_pingxx_orders_shifu_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["transaction_no"], name="ix_order_pingxx_orders_transaction_no"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["user_bid"], name="ix_order_pingxx_orders_user_bid"
                        ),
                    ],
                },
            )
        ),
    ]
