"""The Stripe change, step 1: orders get a payment channel.

The column is added nullable and without a default, which MariaDB and MySQL 8 do
instantly on a table of any size; 0003 fills it in batches and 0004 makes it
NOT NULL DEFAULT 'pingxx'.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("payments", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="payment_channel",
            field=models.CharField(
                db_comment="Payment channel: pingxx, stripe, sandbox", max_length=50, null=True
            ),
        ),
    ]
