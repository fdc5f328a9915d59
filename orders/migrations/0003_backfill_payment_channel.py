"""The Stripe change, step 2: every existing order was paid through Ping++.

0002 now adds the column with its default, so there is nothing left to fill in; on a
database that ran an earlier 0002 (nullable, no default) the rows still NULL are set,
one primary-key range at a time, each range in its own transaction.
"""

from django.db import migrations

from payments_project.migration_utils import update_in_batches


def backfill(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    orders = Order.objects.using(schema_editor.connection.alias)
    update_in_batches(orders.filter(payment_channel__isnull=True), payment_channel="pingxx")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("orders", "0002_order_payment_channel")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False)]
