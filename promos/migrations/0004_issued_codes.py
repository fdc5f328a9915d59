"""The codes this service issues, each once (a unique index the old tables lack)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("promos", "0003_legacy_currency"),
    ]

    operations = [
        migrations.CreateModel(
            name="IssuedCode",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("code", models.CharField(db_comment="Coupon code", max_length=36, unique=True)),
                ("coupon_bid", models.CharField(db_comment="Batch that issued it", max_length=36)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_comment="Creation time")),
            ],
            options={
                "db_table": "promo_issued_codes",
                "db_table_comment": "Coupon codes issued by this service, each once",
            },
        ),
    ]
