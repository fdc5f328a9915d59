"""Unique business ids for Ping++ attempts.

The legacy system left ``pingxx_order_bid`` empty; each such attempt gets the id
``legacy-<row id>`` (reversible: the reverse empties exactly those again). Then
``pingxx_order_bid`` and ``transaction_no`` (the ``order_no`` sent to Ping++) become
unique, after the data is checked; the unique constraints replace the plain indexes.
"""

from django.db import migrations, models
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat

from payments_project.migration_utils import require_unique, update_in_batches


def legacy_bid():
    return Concat(Value("legacy-"), Cast("id", output_field=CharField()))


def fill_bids(apps, schema_editor):
    PingxxOrder = apps.get_model("payments", "PingxxOrder")
    attempts = PingxxOrder.objects.using(schema_editor.connection.alias)
    require_unique(attempts.exclude(pingxx_order_bid=""), "pingxx_order_bid")
    require_unique(attempts, "transaction_no")
    update_in_batches(attempts.filter(pingxx_order_bid=""), pingxx_order_bid=legacy_bid())


def empty_bids(apps, schema_editor):
    PingxxOrder = apps.get_model("payments", "PingxxOrder")
    attempts = PingxxOrder.objects.using(schema_editor.connection.alias)
    update_in_batches(attempts.filter(pingxx_order_bid=legacy_bid()), pingxx_order_bid="")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0007_order_constraints"),
        ("payments", "0003_webhookevent"),
    ]

    operations = [
        migrations.RunPython(fill_bids, empty_bids, elidable=False),
        migrations.AddConstraint(
            model_name="pingxxorder",
            constraint=models.UniqueConstraint(
                fields=("pingxx_order_bid",), name="uq_order_pingxx_orders_pingxx_order_bid"
            ),
        ),
        migrations.AddConstraint(
            model_name="pingxxorder",
            constraint=models.UniqueConstraint(
                fields=("transaction_no",), name="uq_order_pingxx_orders_transaction_no"
            ),
        ),
        migrations.RemoveIndex(
            model_name="pingxxorder", name="ix_order_pingxx_orders_pingxx_order_bid"
        ),
        migrations.RemoveIndex(
            model_name="pingxxorder", name="ix_order_pingxx_orders_transaction_no"
        ),
    ]
