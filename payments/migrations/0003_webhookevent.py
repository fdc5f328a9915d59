"""The webhook inbox: every provider delivery, stored before it is applied."""

from django.db import migrations, models

import payments_project.db


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0006_backfill_refunded_price"),
        ("payments", "0002_stripeorder"),
    ]

    operations = [
        migrations.CreateModel(
            name="WebhookEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("channel", models.CharField(db_comment="Channel that sent it", max_length=50)),
                (
                    "event_id",
                    models.CharField(
                        blank=True,
                        db_comment="Provider event id; set once the signature verified",
                        max_length=255,
                        null=True,
                    ),
                ),
                (
                    "event_type",
                    models.CharField(
                        blank=True, db_comment="Provider event type", default="", max_length=100
                    ),
                ),
                (
                    "signature_status",
                    models.CharField(
                        choices=[
                            ("valid", "Valid"),
                            ("invalid", "Invalid"),
                            ("missing", "Missing"),
                        ],
                        db_comment="Signature verdict",
                        max_length=16,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("received", "Received"),
                            ("applied", "Applied"),
                            ("ignored", "Ignored"),
                            ("failed", "Failed"),
                            ("rejected", "Rejected"),
                        ],
                        db_comment="received, applied, ignored, failed or rejected",
                        default="received",
                        max_length=16,
                    ),
                ),
                (
                    "livemode",
                    models.BooleanField(blank=True, db_comment="Provider live mode", null=True),
                ),
                (
                    "order_bid",
                    models.CharField(
                        blank=True, db_comment="Order the event concerns", default="", max_length=36
                    ),
                ),
                (
                    "object_id",
                    models.CharField(
                        blank=True,
                        db_comment="Provider object id (charge, refund)",
                        default="",
                        max_length=255,
                    ),
                ),
                (
                    "headers",
                    models.JSONField(blank=True, db_comment="Request headers", default=dict),
                ),
                ("body", models.TextField(db_comment="Raw request body")),
                ("payload", models.JSONField(blank=True, db_comment="Parsed body", null=True)),
                (
                    "remote_addr",
                    models.GenericIPAddressField(
                        blank=True, db_comment="Address the delivery came from", null=True
                    ),
                ),
                (
                    "attempts",
                    models.PositiveIntegerField(db_comment="Times it was applied", default=0),
                ),
                (
                    "last_error",
                    models.TextField(blank=True, db_comment="Last error applying it", default=""),
                ),
                (
                    "received_at",
                    models.DateTimeField(auto_now_add=True, db_comment="Reception time"),
                ),
                (
                    "processed_at",
                    models.DateTimeField(
                        blank=True, db_comment="When it was last applied", null=True
                    ),
                ),
            ],
            options={
                "db_table": "payment_webhook_events",
                "db_table_comment": "Provider webhook inbox",
                "indexes": [
                    payments_project.db.LegacyIndex(
                        fields=["order_bid"], name="ix_payment_webhook_events_order_bid"
                    ),
                    payments_project.db.LegacyIndex(
                        fields=["object_id"], name="ix_payment_webhook_events_object_id"
                    ),
                    payments_project.db.LegacyIndex(
                        fields=["status", "received_at"], name="ix_payment_webhook_events_status"
                    ),
                    payments_project.db.LegacyIndex(
                        fields=["received_at"], name="ix_payment_webhook_events_received_at"
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("channel", "event_id"), name="uq_payment_webhook_events_event_id"
                    )
                ],
            },
        ),
    ]
