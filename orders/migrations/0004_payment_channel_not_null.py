"""The Stripe change, step 3: payment_channel NOT NULL DEFAULT 'pingxx', indexed.

The database default keeps rows inserted by the legacy system (which does not know
the column) on the Ping++ channel. Rows it inserted since 0003 are filled by Django's
own NULL-to-default update before the constraint is set. Django's MODIFY for the
NOT NULL change drops the column comment on MySQL, so it is set again.
"""

from django.db import migrations, models

import payments_project.db
from payments_project.migration_utils import on_mysql


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_backfill_payment_channel")]

    operations = [
        migrations.AlterField(
            model_name="order",
            name="payment_channel",
            field=models.CharField(
                db_comment="Payment channel: pingxx, stripe, sandbox",
                db_default="pingxx",
                default="pingxx",
                max_length=50,
            ),
        ),
        migrations.RunPython(
            on_mysql(
                "ALTER TABLE order_orders MODIFY payment_channel varchar(50) NOT NULL "
                "DEFAULT 'pingxx' COMMENT 'Payment channel: pingxx, stripe, sandbox'"
            ),
            migrations.RunPython.noop,
            elidable=False,
        ),
        migrations.AddIndex(
            model_name="order",
            index=payments_project.db.LegacyIndex(
                fields=["payment_channel"], name="ix_order_orders_payment_channel"
            ),
        ),
    ]
