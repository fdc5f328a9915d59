"""The platform's own columns on orders, and the currency of its Stripe orders.

``creator_bid`` (the course owner) and ``payment_integration_bid`` (the merchant
integration a payment went through) with their indexes, as the platform added them:
instantly, each with a database default. A database adopted at the platform's current
schema has them already.

There, orders paid through Stripe were charged in the currency of their Stripe attempt
(``usd``, ``amount = paid_price x 100``), not in the ``cny`` that 0005 gives every old
order: each such order takes its attempts' currency, 1,000 orders at a time, each batch
in its own transaction. An order whose attempts disagree keeps ``cny`` and is listed
(its refunds are then refused for the currency mismatch rather than guessed).
"""

from django.db import migrations, models, transaction

import payments_project.db
from payments_project.adoption import CURRENT, ExceptOn, adopted_version

BATCH = 1_000


def stripe_order_currencies(apps, schema_editor):
    connection = schema_editor.connection
    if adopted_version(connection) != CURRENT:
        return
    Order = apps.get_model("orders", "Order")
    StripeOrder = apps.get_model("payments", "StripeOrder")
    orders = Order.objects.using(connection.alias).filter(payment_channel="stripe")
    attempts = StripeOrder._base_manager.using(connection.alias).filter(biz_domain="order")
    last, disagreeing, changed = 0, [], 0
    while True:
        batch = dict(
            orders.filter(pk__gt=last).order_by("pk").values_list("pk", "order_bid")[:BATCH]
        )
        if not batch:
            break
        last = max(batch)
        currencies: dict[str, set[str]] = {}
        for order_bid, currency in attempts.filter(order_bid__in=list(batch.values())).values_list(
            "order_bid", "currency"
        ):
            currencies.setdefault(order_bid, set()).add(currency.lower())
        by_currency: dict[str, list[int]] = {}
        for pk, order_bid in batch.items():
            found = currencies.get(order_bid, set())
            if len(found) == 1:
                by_currency.setdefault(found.pop(), []).append(pk)
            elif found:
                disagreeing.append(order_bid)
        with transaction.atomic(using=connection.alias):
            for currency, pks in by_currency.items():
                changed += (
                    orders.filter(pk__in=pks).exclude(currency=currency).update(currency=currency)
                )
    print(f"\n    {changed} Stripe orders take their attempts' currency", end="")
    if disagreeing:
        print(
            f"; {len(disagreeing)} whose attempts disagree keep cny, e.g. {disagreeing[:5]}",
            end="",
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0016_legacy_discounts"),
        ("payments", "0008_platform_layout"),
    ]

    operations = [
        ExceptOn(
            migrations.AddField(
                model_name="order",
                name="creator_bid",
                field=models.CharField(
                    blank=True,
                    db_comment="Course owner identifier",
                    db_default="",
                    default="",
                    max_length=36,
                ),
            )
        ),
        ExceptOn(
            migrations.AddField(
                model_name="order",
                name="payment_integration_bid",
                field=models.CharField(
                    blank=True,
                    db_comment="Snapshotted creator integration",
                    db_default="",
                    default="",
                    max_length=36,
                ),
            )
        ),
        ExceptOn(
            migrations.AddIndex(
                model_name="order",
                index=payments_project.db.LegacyIndex(
                    fields=["creator_bid"], name="ix_order_orders_creator_bid"
                ),
            )
        ),
        ExceptOn(
            migrations.AddIndex(
                model_name="order",
                index=payments_project.db.LegacyIndex(
                    fields=["payment_integration_bid"],
                    name="ix_order_orders_payment_integration_bid",
                ),
            )
        ),
        migrations.RunPython(stripe_order_currencies, migrations.RunPython.noop, elidable=False),
    ]
