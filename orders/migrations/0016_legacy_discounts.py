"""Legacy orders paid with a coupon or a promotion: record what the discounts took off.

The old system kept no discount on its orders: it lowered ``paid_price`` from the list
price ``payable_price`` by its promotions and coupon. This service reads the discount
from ``discount_price`` (0015): without it a legacy discounted order would look as if
it had been paid short, and its coupon would not follow a refund. So, for the orders
paid (502), refunded (503) or revoked (507) that used a code (a ``promo_coupon_usages``
row with status 903) or a promotion (a ``promo_redemptions`` row with status 4101),
neither soft-deleted, and with 0 <= paid_price <= payable_price:

- ``order_orders.discount_price`` = payable_price - paid_price;
- the code's ``promo_coupon_usages.discount_amount`` (promos 0002) = that discount less
  what the order's applied promotions took off (their ``discount_amount``), never below
  zero: the old system took both off the list price and added them up. An order with
  several used codes (the old code refused a second one) gets it on the first.

Unpaid orders (501, 504) whose code the old system marked used (903) before payment
hold it instead (905, reserved), with their discount recorded the same way, so that
their code is given back when they time out or are cancelled, as the old system did.

Only values still at zero are filled: orders and codes this service priced carry their
own, and running this again changes nothing. Orders whose prices break the rule above
are left alone (their discount cannot be told).

The orders are found through the promo tables' ``order_bid`` indexes, 1000 order_bids at
a time, each chunk in its own short transaction, so the old system can keep writing.

Reverse: the codes held by unpaid orders (905, reserved, whether held since this
migration or by orders of this service) are marked used (903) again, as the old system
marks a code its unpaid order holds. Discounts are not undone. Rolling back 0015 drops
``discount_price``, and rolling back promos 0002 drops ``discount_amount``; rolling back
only this migration leaves the recorded discounts in place, which is harmless (they are
what was taken off), and applying it again changes nothing. Setting them back to zero
here could not tell these rows from the discounts this service recorded itself.
"""

from decimal import Decimal

from django.db import migrations, transaction
from django.db.models import F, Sum

CHUNK = 1000
DONE = (502, 503, 507)  # paid, refunded, revoked
UNPAID = (501, 504)  # init, unpaid
USED = 903
RESERVED = 905
APPLIED = 4101
ZERO = Decimal("0.00")


def _order_bid_chunks(model, status, using):
    """The distinct order_bids of ``model``'s live rows in ``status``, CHUNK at a time,
    in order (keyset on the order_bid index)."""
    last = ""
    while True:
        chunk = list(
            model.objects.using(using)
            .filter(status=status, deleted=0, order_bid__gt=last)
            .order_by("order_bid")
            .values_list("order_bid", flat=True)
            .distinct()[:CHUNK]
        )
        if not chunk:
            return
        yield chunk
        last = chunk[-1]


def _fill(apps, using, order_bids):
    Order = apps.get_model("orders", "Order")
    CouponUsage = apps.get_model("promos", "CouponUsage")
    Redemption = apps.get_model("promos", "CampaignRedemption")
    with transaction.atomic(using=using):
        orders = {
            bid: (pk, payable - paid)
            for pk, bid, payable, paid in Order.objects.using(using)
            .filter(
                order_bid__in=order_bids,
                status__in=DONE + UNPAID,
                discount_price=0,
                paid_price__gte=0,
                paid_price__lt=F("payable_price"),  # equal: nothing was taken off
            )
            .values_list("pk", "order_bid", "payable_price", "paid_price")
        }
        if not orders:
            return
        Order.objects.using(using).filter(
            pk__in=[pk for pk, _ in orders.values()], discount_price=0
        ).update(discount_price=F("payable_price") - F("paid_price"))

        promoted = dict(
            Redemption.objects.using(using)
            .filter(order_bid__in=list(orders), status=APPLIED, deleted=0)
            .values("order_bid")
            .annotate(total=Sum("discount_amount"))
            .values_list("order_bid", "total")
        )
        first_use = {}
        for pk, bid in (
            CouponUsage.objects.using(using)
            .filter(order_bid__in=list(orders), status=USED, deleted=0)
            .order_by("-id")
            .values_list("pk", "order_bid")
        ):
            first_use[bid] = pk  # the lowest id wins
        amounts = {}
        for bid, pk in first_use.items():
            amount = orders[bid][1] - (promoted.get(bid) or ZERO)
            if amount > 0:
                amounts.setdefault(amount, []).append(pk)
        for amount, pks in amounts.items():
            CouponUsage.objects.using(using).filter(pk__in=pks, discount_amount=0).update(
                discount_amount=amount
            )


def _hold(apps, using, order_bids):
    """The codes of unpaid orders, marked used by the old system, held instead."""
    Order = apps.get_model("orders", "Order")
    CouponUsage = apps.get_model("promos", "CouponUsage")
    with transaction.atomic(using=using):
        unpaid = list(
            Order.objects.using(using)
            .filter(order_bid__in=order_bids, status__in=UNPAID)
            .values_list("order_bid", flat=True)
        )
        if unpaid:
            CouponUsage.objects.using(using).filter(
                order_bid__in=unpaid, status=USED, deleted=0
            ).update(status=RESERVED)


def backfill(apps, schema_editor):
    using = schema_editor.connection.alias
    for model_name, status in (("CouponUsage", USED), ("CampaignRedemption", APPLIED)):
        model = apps.get_model("promos", model_name)
        for order_bids in _order_bid_chunks(model, status, using):
            _fill(apps, using, order_bids)
    usages = apps.get_model("promos", "CouponUsage")
    for order_bids in _order_bid_chunks(usages, USED, using):
        _hold(apps, using, order_bids)


def unhold(apps, schema_editor):
    """Back to the old system: a code held by an unpaid order is "used" (903) there."""
    from payments_project.migration_utils import update_in_batches

    usages = apps.get_model("promos", "CouponUsage")
    using = schema_editor.connection.alias
    update_in_batches(usages.objects.using(using).filter(status=RESERVED), status=USED)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0015_discounts"),
        ("promos", "0003_legacy_currency"),
    ]

    operations = [migrations.RunPython(backfill, unhold, elidable=False)]
