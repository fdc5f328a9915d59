"""The Stripe change, step 4: one row per Stripe attempt in ``order_stripe_orders``.

A database adopted at the platform's current schema already has the table, in the
platform's layout: nothing is created there, and payments 0008 brings the table this
migration creates elsewhere to that same layout.
"""

from django.db import migrations, models

import payments_project.db
from payments_project.adoption import ExceptOn


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0004_payment_channel_not_null"),
        ("payments", "0001_initial"),
    ]

    operations = [
        ExceptOn(
            migrations.CreateModel(
                name="StripeOrder",
                fields=[
                    (
                        "id",
                        models.BigAutoField(
                            auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                        ),
                    ),
                    (
                        "stripe_order_bid",
                        models.CharField(
                            db_comment="Stripe order business identifier",
                            default=payments_project.db.new_bid,
                            max_length=36,
                            unique=True,
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
                        "payment_intent_id",
                        models.CharField(
                            blank=True,
                            db_comment="Stripe PaymentIntent id",
                            max_length=255,
                            null=True,
                            unique=True,
                        ),
                    ),
                    (
                        "checkout_session_id",
                        models.CharField(
                            blank=True,
                            db_comment="Stripe Checkout Session id",
                            max_length=255,
                            null=True,
                            unique=True,
                        ),
                    ),
                    (
                        "latest_charge_id",
                        models.CharField(
                            blank=True,
                            db_comment="Latest Stripe charge id",
                            default="",
                            max_length=255,
                        ),
                    ),
                    (
                        "amount",
                        models.BigIntegerField(db_comment="Amount in minor units of the currency"),
                    ),
                    (
                        "currency",
                        models.CharField(db_comment="ISO 4217 currency, lower case", max_length=3),
                    ),
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
                        "receipt_url",
                        models.CharField(
                            blank=True, db_comment="Stripe receipt URL", default="", max_length=500
                        ),
                    ),
                    (
                        "payment_method",
                        models.CharField(
                            blank=True,
                            db_comment="Payment method id or type",
                            default="",
                            max_length=255,
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
                        "metadata",
                        models.JSONField(
                            blank=True, db_comment="Metadata sent to Stripe", default=dict
                        ),
                    ),
                    (
                        "payment_intent_object",
                        models.JSONField(
                            blank=True, db_comment="Raw PaymentIntent object", null=True
                        ),
                    ),
                    (
                        "checkout_session_object",
                        models.JSONField(
                            blank=True, db_comment="Raw Checkout Session object", null=True
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
                    "db_table": "order_stripe_orders",
                    "db_table_comment": "Order stripe orders",
                    "indexes": [
                        payments_project.db.LegacyIndex(
                            fields=["order_bid"], name="ix_order_stripe_orders_order_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["user_bid"], name="ix_order_stripe_orders_user_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["product_bid"], name="ix_order_stripe_orders_shifu_bid"
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["latest_charge_id"],
                            name="ix_order_stripe_orders_latest_charge_id",
                        ),
                        payments_project.db.LegacyIndex(
                            fields=["status", "created_at"],
                            name="ix_order_stripe_orders_status_created_at",
                        ),
                    ],
                },
            )
        ),
    ]
