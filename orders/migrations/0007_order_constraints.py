"""Constraints the legacy schema lacked: unique order_bid, prices that add up.

The data is checked first; a legacy row that would break a constraint stops the
migration with the ids to look at, before any change. The unique constraint replaces
the plain ix_order_orders_order_bid index (added before the index is dropped, so
lookups by order_bid stay indexed throughout); both are built in place while the table
takes writes. The price checks are triggers on MySQL (``AddCheckConstraint``): a CHECK
constraint there would copy the whole table under a write lock. They come first: the
migration is not atomic on MySQL, and a refused trigger (the TRIGGER privilege missing)
then leaves nothing half done.
"""

from django.db import migrations, models
from django.db.models import F, Q

from payments_project.migration_utils import AddCheckConstraint, require_none, require_unique


def check_data(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    orders = Order.objects.using(schema_editor.connection.alias)
    require_unique(orders, "order_bid")
    require_none(orders.filter(Q(payable_price__lt=0) | Q(paid_price__lt=0)), "prices not negative")
    require_none(
        orders.filter(Q(refunded_price__lt=0) | Q(refunded_price__gt=F("paid_price"))),
        "refunded total within the paid price",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0006_backfill_refunded_price"),
        ("payments", "0003_webhookevent"),
    ]

    operations = [
        migrations.RunPython(check_data, migrations.RunPython.noop, elidable=False),
        AddCheckConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(("payable_price__gte", 0), ("paid_price__gte", 0)),
                name="ck_order_orders_prices_not_negative",
            ),
        ),
        AddCheckConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("refunded_price__gte", 0), ("refunded_price__lte", models.F("paid_price"))
                ),
                name="ck_order_orders_refunded_within_paid",
            ),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.UniqueConstraint(
                fields=("order_bid",), name="uq_order_orders_order_bid"
            ),
        ),
        migrations.RemoveIndex(model_name="order", name="ix_order_orders_order_bid"),
    ]
