"""What the support console's search box finds, on tables of a million orders.

The whole box is one term (not words searched separately). Every kind of match is an
indexed condition, or a small bounded lookup turned into one first:

- an exact order, user or product id (their own indexes);
- a provider id of one of the order's attempts: Ping++ charge, transaction number,
  Stripe PaymentIntent, Checkout Session, charge (indexed lookups on the attempt tables,
  at most ``PROVIDER_ID_MATCHES`` orders);
- an e-mail address or a username: the accounts with that e-mail (indexed
  ``auth_user.email``) or username, then their user_bids;
- part of a product's name (any case): the products' bids (a small table), then their
  orders by ``shifu_bid``;
- an amount (``19.90``, ``¥19.90``, ``CN¥19.90``, ``19.90 CNY``): orders whose
  ``paid_price`` is exactly that (indexed; unpaid orders have paid nothing), in that
  currency when the term names an ISO code; refunds whose amount is exactly that.

Each id an account, a product or an amount resolves to stands for its newest
``MATCHES_EACH`` orders, read by walking its index backwards (InnoDB keeps the primary
key in every secondary index, so ``WHERE shifu_bid = %s ORDER BY id DESC LIMIT n`` reads
n entries): a course with 200,000 orders is searched as fast as one with ten. The list
then shows those orders, newest first; a filter (status, date) narrows further.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connection
from django.db.models import Q, QuerySet

from orders.selectors import parse_amount, product_bids_named, user_bids_for_account
from payments.models import PingxxOrder, StripeOrder

# Provider ids looked up when a search names one, at most this many orders.
PROVIDER_ID_MATCHES = 100
# The newest orders an account, a product or an amount stands for in a search.
MATCHES_EACH = 200
# A refund search by user finds the refunds of at most this many of their orders.
REFUND_ORDER_MATCHES = 1_000

ORDER_SEARCH_HELP = (
    "Exact order, user or product id; an e-mail address or username; part of a product's "
    "name; an amount paid (19.90, CN¥19.90, 19.90 CNY); or a Ping++ charge / transaction "
    "number or "
    "Stripe PaymentIntent / Checkout Session / charge id of one of its attempts."
)
REFUND_SEARCH_HELP = (
    "Exact refund, order or user id, provider refund id; the user's e-mail address or "
    "username; or "
    "an amount refunded (19.90, CN¥19.90)."
)


def order_bids_for_provider_id(term: str) -> list[str]:
    """Orders whose Ping++ or Stripe attempt carries the provider id ``term``.

    One indexed lookup per table, bounded; the order search then filters on a list of
    order bids instead of OR-ing subqueries, which MySQL would run once per order row.
    """
    pingxx = PingxxOrder.objects.filter(
        Q(charge_id=term) | Q(transaction_no=term) | Q(pingxx_order_bid=term)
    ).values_list("order_bid", flat=True)[:PROVIDER_ID_MATCHES]
    stripe = StripeOrder.objects.filter(
        Q(payment_intent_id=term)
        | Q(checkout_session_id=term)
        | Q(latest_charge_id=term)
        | Q(stripe_order_bid=term)
    ).values_list("order_bid", flat=True)[:PROVIDER_ID_MATCHES]
    return [*pingxx, *stripe]


def newest_orders(orders: QuerySet, field: str, values, **also) -> list[int]:
    """The primary keys of the newest ``MATCHES_EACH`` of ``orders`` (what the staff
    user may see) for each of ``values`` of the indexed ``field`` (and ``also``): one
    UNION ALL of backward index scans, or one query per value where the database cannot
    limit the parts of a union (SQLite)."""
    values = list(dict.fromkeys(value for value in values if value))
    parts = [
        orders.filter(**{field: value}, **also)
        .order_by("-id")
        .values_list("pk", flat=True)[:MATCHES_EACH]
        for value in values
    ]
    if not parts:
        return []
    if len(parts) > 1 and connection.features.supports_slicing_ordering_in_compound:
        return list(parts[0].union(*parts[1:], all=True))
    return [pk for part in parts for pk in part]


def _amount(term: str) -> tuple[Decimal, dict[str, str]] | None:
    """The amount ``term`` names, and the currency lookup when it names a code; None if
    it names none (or zero, which would be every unpaid order)."""
    found = parse_amount(term)
    if found is None or not found[0]:
        return None
    amount, currency = found
    return amount, ({"currency": currency} if currency else {})


def order_search(term: str, orders: QuerySet) -> Q | None:
    """The ``orders`` (what the staff user may see) ``term`` names (see the module), as
    one condition; None for none."""
    term = term.strip()
    if not term:
        return None
    one_word = not term.split()[1:]
    order_bids = [term, *order_bids_for_provider_id(term)] if one_word else [term]
    pks = [
        *newest_orders(orders, "user_bid", [term, *user_bids_for_account(term)]),
        *newest_orders(orders, "product_bid", [term, *product_bids_named(term)]),
    ]
    if (found := _amount(term)) is not None:
        amount, currency = found
        pks += newest_orders(orders, "paid_price", [amount], **currency)
    return Q(order_bid__in=order_bids) | Q(pk__in=pks)


def refund_search(term: str, orders: QuerySet) -> Q | None:
    """The refunds ``term`` names: by their own ids, their order's or user's (the newest
    of ``orders``, what the staff user may see, bounded), or their amount."""
    term = term.strip()
    if not term:
        return None
    order_ids = list(
        orders.filter(Q(order_bid=term) | Q(user_bid__in=[term, *user_bids_for_account(term)]))
        .order_by("-id")
        .values_list("pk", flat=True)[:REFUND_ORDER_MATCHES]
    )
    condition = Q(refund_bid=term) | Q(provider_refund_id=term) | Q(order_id__in=order_ids)
    if (found := _amount(term)) is not None:
        amount, currency = found
        condition |= Q(amount=amount, **currency)
    return condition
