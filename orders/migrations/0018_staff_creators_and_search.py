"""The support console's creator scoping and search.

- ``Product.creator_bid`` (this service's own table), indexed: the course's author,
  copied onto each new order.
- ``StaffCreator``: a staff account linked to the creators whose orders it may see.
- An index on ``order_orders.paid_price`` for the search by amount paid, added online
  (``ALGORITHM=INPLACE, LOCK=NONE`` on MySQL: the server refuses rather than copy the
  legacy table).
- Indexes on ``order_refunds.amount`` and ``provider_refund_id``, for the refunds'
  search.
- An index on ``auth_user.email`` for the search by e-mail: the search resolves an
  address to its accounts' user_bids with one indexed lookup before it reads orders.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import payments_project.db
from payments_project.migration_utils import AddIndexOnline

# auth_user is this service's own table (one row per account): no state of a model
# changes, so the index is plain SQL.
USER_EMAIL_INDEX = "ix_auth_user_email"


def user_email_index_add(apps, schema_editor):
    schema_editor.execute(f"CREATE INDEX {USER_EMAIL_INDEX} ON auth_user (email)")


def user_email_index_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute(f"DROP INDEX {USER_EMAIL_INDEX} ON auth_user")
    else:
        schema_editor.execute(f"DROP INDEX {USER_EMAIL_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0017_platform_columns"),
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="product",
            name="creator_bid",
            field=models.CharField(
                blank=True,
                db_comment="Course owner (creator) identifier",
                default="",
                max_length=36,
            ),
        ),
        migrations.AddIndex(
            model_name="product",
            index=payments_project.db.LegacyIndex(
                fields=["creator_bid"], name="ix_order_products_creator_bid"
            ),
        ),
        migrations.CreateModel(
            name="StaffCreator",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "creator_bid",
                    models.CharField(db_comment="Creator (course owner) identifier", max_length=36),
                ),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, db_comment="Creation time"),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_comment="Staff account",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="creator_links",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "staff creator link",
                "db_table": "order_staff_creators",
                "db_table_comment": "Staff accounts restricted to the orders of some creators",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("user", "creator_bid"),
                        name="uq_order_staff_creators_user_creator",
                    )
                ],
            },
        ),
        AddIndexOnline(
            model_name="order",
            index=payments_project.db.LegacyIndex(
                fields=["paid_price"], name="ix_order_orders_paid_price"
            ),
        ),
        migrations.AddIndex(
            model_name="refund",
            index=payments_project.db.LegacyIndex(
                fields=["amount"], name="ix_order_refunds_amount"
            ),
        ),
        migrations.AddIndex(
            model_name="refund",
            index=payments_project.db.LegacyIndex(
                fields=["provider_refund_id"], name="ix_order_refunds_provider_refund_id"
            ),
        ),
        migrations.RunPython(
            user_email_index_add, user_email_index_drop, atomic=False, elidable=False
        ),
    ]
