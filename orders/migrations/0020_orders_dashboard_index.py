# The dashboard's covering index on order_orders (created_at, currency, status,
# payment_channel, paid_price): built in place on MySQL, writes going on
# (ALGORITHM=INPLACE, LOCK=NONE named, so the server refuses rather than copy the table).

from django.db import migrations

import payments_project.db
from payments_project.migration_utils import AddIndexOnline


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0019_dashboard_indexes"),
    ]

    operations = [
        AddIndexOnline(
            model_name="order",
            index=payments_project.db.LegacyIndex(
                fields=["created_at", "currency", "status", "payment_channel", "paid_price"],
                name="ix_order_orders_dashboard",
            ),
        ),
    ]
