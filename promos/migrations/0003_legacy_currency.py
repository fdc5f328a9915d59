"""The old system's promo rows: in CNY, and with the rules they had.

The old system had no currency on its promo tables; it priced everything in CNY, as
``order_orders.currency`` (default ``cny``, orders 0005) already assumes for its orders.
0002 added the columns empty, and this service applies a fixed discount only in the
currency it names: a legacy fixed batch or campaign (discount_type 701) with an empty
currency would apply to no order. So:

- ``promo_coupons`` and ``promo_promos`` of discount_type 701 with an empty currency get
  ``cny`` (a percentage has no currency: those stay empty);
- ``promo_coupon_usages`` and ``promo_redemptions`` bound to an order (``order_bid`` not
  empty) with an empty currency get ``cny``, the currency of that order; unbound code
  rows of single-use batches stay empty until an order takes them.

The old system's batches and campaigns also keep the rules they had, which this
service's defaults (0002) would change: no per-user cap (``per_user_limit`` 0), a code
adds up with the course's promotions (``stacks_with_promotions``; now computed on what
the promotions left, not again on the list price), a refund never gives a code back
(``release_on_refund`` off), and every campaign of a course applies (``stackable``).
Every batch and campaign in the tables when this runs is the old system's: this
service makes its own after it.

The old batches' ``used_count`` is set to the uses their rows hold (903 used; 905 is
this service's reserved): the old system counted a use when a code was applied and kept
counting it after an order timed out and the code went back to free (902), so its
counters run ahead of the rows, and a single-use batch whose counter reached its total
would refuse codes nobody holds. This service counts held uses exactly.

Rows this service wrote already carry their currency and are not touched. Updated in
primary-key ranges, each its own short transaction (``update_in_batches``), so the old
system can keep writing meanwhile. Reverse: nothing to undo; rolling back 0002 drops
the columns.
"""

from django.db import migrations

from payments_project.migration_utils import update_in_batches

CNY = "cny"
FIXED = 701
HELD = (903, 905)  # used; reserved


def backfill(apps, schema_editor):
    alias = schema_editor.connection.alias
    for name in ("CouponBatch", "Campaign"):
        model = apps.get_model("promos", name)
        update_in_batches(
            model.objects.using(alias).filter(discount_type=FIXED, currency=""), currency=CNY
        )
    update_in_batches(
        apps.get_model("promos", "CouponBatch").objects.using(alias),
        per_user_limit=0,
        stacks_with_promotions=True,
        release_on_refund=False,
    )
    update_in_batches(apps.get_model("promos", "Campaign").objects.using(alias), stackable=True)
    _recount(apps, alias)
    for name in ("CouponUsage", "CampaignRedemption"):
        model = apps.get_model("promos", name)
        update_in_batches(
            model.objects.using(alias).filter(currency="").exclude(order_bid=""), currency=CNY
        )


def _recount(apps, alias):
    """Each batch's ``used_count``: the uses its rows hold, one grouped count."""
    from django.db.models import Count

    batches = apps.get_model("promos", "CouponBatch").objects.using(alias)
    usages = apps.get_model("promos", "CouponUsage").objects.using(alias)
    held = dict(
        usages.filter(status__in=HELD, deleted=0)
        .values("coupon_bid")
        .annotate(uses=Count("pk"))
        .values_list("coupon_bid", "uses")
    )
    for pk, coupon_bid, used in batches.values_list("pk", "coupon_bid", "used_count"):
        if used != held.get(coupon_bid, 0):
            batches.filter(pk=pk).update(used_count=held.get(coupon_bid, 0))


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("promos", "0002_service_columns")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False)]
