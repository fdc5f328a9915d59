"""The Stripe change, step 1: orders get a payment channel.

``NOT NULL DEFAULT 'pingxx'`` added at the end of the table: MariaDB and MySQL 8 do it
instantly on a table of any size, every existing row reads 'pingxx', and the legacy
system's inserts (which do not name the column) get it too. A database adopted at the
platform's current schema already has the column: it is left as it is.
"""

from django.db import migrations, models

from payments_project.adoption import ExceptOn


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("payments", "0001_initial"),
    ]

    operations = [
        ExceptOn(
            migrations.AddField(
                model_name="order",
                name="payment_channel",
                field=models.CharField(
                    db_comment="Payment channel: pingxx, stripe, sandbox",
                    db_default="pingxx",
                    default="pingxx",
                    max_length=50,
                ),
            )
        ),
    ]
