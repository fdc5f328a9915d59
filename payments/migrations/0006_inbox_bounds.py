"""The inbox bounded: a rejected delivery keeps its size, digest and first 2 KiB, and its
repeats count on one row (unique channel, digest, rejection code and signature verdict).

Every column is added with a database default (instant on MariaDB, whatever the size of
the table); the unique index is built in place without blocking writes. Existing rows
get a NULL digest, which the unique index allows any number of.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0005_sandbox_attempts"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="body_bytes",
            field=models.PositiveIntegerField(
                db_comment="Size of the delivery's body in bytes (a rejected one keeps its first 2 KiB)",
                db_default=0,
                default=0,
            ),
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="digest",
            field=models.CharField(
                blank=True,
                db_comment="SHA-256 of a rejected delivery's body (empty: not read); NULL otherwise",
                max_length=64,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="last_seen_at",
            field=models.DateTimeField(
                blank=True, db_comment="When a rejected delivery was last received", null=True
            ),
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="rejection_code",
            field=models.CharField(
                blank=True,
                db_comment="Error code of a rejected delivery (its repeats count on one row)",
                db_default="",
                default="",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="repeats",
            field=models.PositiveIntegerField(
                db_comment="Deliveries counted on this row (rejected repeats)",
                db_default=1,
                default=1,
            ),
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="result",
            field=models.CharField(
                blank=True,
                db_comment="What applying it did",
                db_default="",
                default="",
                max_length=500,
            ),
        ),
        migrations.AddConstraint(
            model_name="webhookevent",
            constraint=models.UniqueConstraint(
                fields=("channel", "digest", "rejection_code", "signature_status"),
                name="uq_payment_webhook_events_digest",
            ),
        ),
    ]
