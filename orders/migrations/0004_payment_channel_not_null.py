"""The Stripe change, step 3: payment_channel NOT NULL DEFAULT 'pingxx', commented, indexed.

On a database that ran an earlier 0002 (nullable, no default) this makes the column
NOT NULL DEFAULT 'pingxx'; since 0002 adds it that way, it changes nothing else. The
comment is set again because Django's MODIFY for the NOT NULL change drops it on MySQL.
A database adopted at the platform's current schema has the column, its default and
its index: only the comment changes (metadata only), and a rollback puts the platform's
comment back.
"""

from django.db import migrations, models

import payments_project.db
from payments_project.adoption import CURRENT, ExceptOn, adopted_version

PLATFORM_COMMENT = "Payment channel"
OUR_COMMENT = "Payment channel: pingxx, stripe, sandbox"


def _comment(text):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "mysql":
            return
        if text == PLATFORM_COMMENT and adopted_version(connection) != CURRENT:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE order_orders MODIFY payment_channel varchar(50) NOT NULL "
                f"DEFAULT 'pingxx' COMMENT '{text}'"
            )

    return run


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_backfill_payment_channel")]

    operations = [
        ExceptOn(
            migrations.AlterField(
                model_name="order",
                name="payment_channel",
                field=models.CharField(
                    db_comment="Payment channel: pingxx, stripe, sandbox",
                    db_default="pingxx",
                    default="pingxx",
                    max_length=50,
                ),
            )
        ),
        migrations.RunPython(_comment(OUR_COMMENT), _comment(PLATFORM_COMMENT), elidable=False),
        ExceptOn(
            migrations.AddIndex(
                model_name="order",
                index=payments_project.db.LegacyIndex(
                    fields=["payment_channel"], name="ix_order_orders_payment_channel"
                ),
            )
        ),
    ]
