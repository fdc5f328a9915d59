"""Ping++ attempts: ``transaction_no`` (the ``order_no`` sent to Ping++) becomes unique.

Ping++ itself refuses a second charge with the same order_no, so the legacy data
allows it; the data is checked first all the same. The unique constraint replaces the
plain index. ``pingxx_order_bid`` stays as it was: the legacy system writes it empty,
and it may keep writing attempts during the switch-over, so it cannot be unique. An
attempt's business id is its transaction_no (see ``PingxxOrder.attempt_bid``).
"""

from django.db import migrations, models

from payments_project.migration_utils import require_unique


def check_data(apps, schema_editor):
    PingxxOrder = apps.get_model("payments", "PingxxOrder")
    require_unique(PingxxOrder.objects.using(schema_editor.connection.alias), "transaction_no")


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0007_order_constraints"),
        ("payments", "0003_webhookevent"),
    ]

    operations = [
        migrations.RunPython(check_data, migrations.RunPython.noop, elidable=False),
        migrations.AddConstraint(
            model_name="pingxxorder",
            constraint=models.UniqueConstraint(
                fields=("transaction_no",), name="uq_order_pingxx_orders_transaction_no"
            ),
        ),
        migrations.RemoveIndex(
            model_name="pingxxorder", name="ix_order_pingxx_orders_transaction_no"
        ),
    ]
