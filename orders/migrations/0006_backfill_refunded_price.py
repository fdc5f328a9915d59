"""Legacy orders in status 503 (refunded) were refunded in full: record that total.

The old system only refunded whole orders, so their refunded total is what was paid.
Updated in primary-key batches like 0003.
"""

from django.db import migrations
from django.db.models import F

from payments_project.migration_utils import update_in_batches

REFUNDED = 503


def backfill(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    orders = Order.objects.using(schema_editor.connection.alias)
    update_in_batches(
        orders.filter(status=REFUNDED, refunded_price=0), refunded_price=F("paid_price")
    )


def unfill(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    orders = Order.objects.using(schema_editor.connection.alias)
    update_in_batches(orders.filter(status=REFUNDED), refunded_price=0)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("orders", "0005_currency_refunds_products")]

    operations = [migrations.RunPython(backfill, unfill, elidable=False)]
