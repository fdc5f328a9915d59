"""The functions that read orders, their attempts, refunds and history."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from bridge import identity
from orders.models import (
    ApprovalStatus,
    Order,
    OrderEvent,
    OrderStatus,
    Product,
    Refund,
    RefundApproval,
    RefundStatus,
    StaffCreator,
)
from payments import registry
from payments.models import AttemptStatus
from payments_project.money import display, to_major
from promos.selectors import order_discount_lines


def _money() -> DecimalField:
    return DecimalField(max_digits=10, decimal_places=2)


def user_bid_for(user: Any) -> str:
    """The ``user_bid`` a user's orders are keyed by: the platform's ``user_bid`` for a
    platform user (legacy orders are theirs as they are), the primary key as text for a
    local account."""
    return identity.user_bid_for(user)


def accounts_by_user_bid(user_bids) -> dict[str, Any]:
    """The accounts behind ``user_bids``, for showing whose orders they are: two
    queries whatever their number (``bridge.identity.accounts_by_user_bid``)."""
    return identity.accounts_by_user_bid(user_bids)


def account_label(account: Any) -> str:
    """An account as staff recognise it: its e-mail, else its username."""
    if account is None:
        return ""
    return account.email or account.get_username()


def order_latest_attempt(order: Order) -> Any:
    """The order's newest attempt on its channel, or None (none yet, or a channel with no
    attempts: ``free``, ``grant``). Read only: no provider call; the platform's own
    Alipay / WeChat Pay attempts included."""
    model = registry.attempt_model(order.payment_channel)
    if model is None:
        return None
    return model.objects.filter(order_bid=order.order_bid).order_by("-id").first()


def products_on_sale():
    return Product.objects.filter(active=True).order_by("name")


def orders_owning(user_bid: str, product_bids: list[str]) -> dict[str, str]:
    """``{product_bid: order_bid}`` of the products the user has paid for (one query)."""
    rows = (
        Order.objects.live()
        .filter(user_bid=user_bid, product_bid__in=product_bids, status=OrderStatus.PAID)
        .order_by("id")
        .values_list("product_bid", "order_bid")
    )
    return dict(rows)


def product_names(product_bids) -> dict[str, str]:
    """``{product_bid: name}`` in one query."""
    return dict(
        Product.objects.filter(product_bid__in=set(product_bids)).values_list("product_bid", "name")
    )


def orders_for_user(user: Any):
    return Order.objects.live().filter(user_bid=user_bid_for(user)).order_by("-id")


def _sees_everything(user: Any) -> bool:
    return bool(user.is_staff)


def orders_visible_to(user: Any) -> QuerySet[Order]:
    """The orders a user may see (staff: all, or their creators' when linked to some;
    a buyer: their own), with ``paid_at`` and what refunds hold (see
    ``orders_with_refunds_held``) annotated, so a page of orders costs one query
    whatever its size."""
    orders = Order.objects.live()
    if _sees_everything(user):
        orders = scoped(orders, user)
    else:
        orders = orders.filter(user_bid=user_bid_for(user))
    return orders_for_api(orders)


def _paid_at() -> Subquery:
    return Subquery(
        OrderEvent.objects.filter(order=OuterRef("pk"), to_status=OrderStatus.PAID)
        .order_by("-id")
        .values("created_at")[:1]
    )


def orders_with_paid_at(orders: QuerySet[Order]) -> QuerySet[Order]:
    """``orders`` with ``paid_at`` (when each was last paid, from its history)
    annotated, in the same query."""
    return orders.annotate(paid_at=_paid_at())


def orders_for_api(orders: QuerySet[Order]) -> QuerySet[Order]:
    """``orders`` with what the API shows of them annotated: ``paid_at`` and what
    refunds hold."""
    return orders_with_refunds_held(orders.annotate(paid_at=_paid_at()))


# ---- the refundable amount ----
#
# What can still be refunded of a paid order is its paid price, less what was refunded,
# less what refunds hold: refunds sent and not settled, and refunds awaiting a second
# staff member's approval. Refunds of a duplicate payment are not part of the order's
# totals. The services check refunds against it (under the order's lock), the admin and
# the API show it.

# The annotation ``orders_with_refunds_held`` adds, read by ``order_refunds_held``.
REFUNDS_HELD = "refunds_held"


def _refunds_pending(**where: Any) -> QuerySet[Refund]:
    return Refund.objects.filter(status=RefundStatus.PENDING, duplicate_payment=False, **where)


def _approvals_awaiting(**where: Any) -> QuerySet[RefundApproval]:
    return RefundApproval.objects.filter(status=ApprovalStatus.AWAITING, **where)


def amount_total(queryset: QuerySet) -> Decimal:
    """The sum of the ``amount`` of the rows of ``queryset`` (0.00 for none)."""
    return queryset.aggregate(total=Sum("amount"))["total"] or Decimal("0.00")


def order_awaiting_approval(order: Order) -> Decimal:
    """What refunds awaiting a second staff member's approval ask for on ``order``."""
    return amount_total(_approvals_awaiting(order=order))


def order_refunds_held(order: Order) -> Decimal:
    """What pending refunds and refunds awaiting approval hold of ``order``: from the
    annotation of ``orders_with_refunds_held`` when the order carries it, else counted
    now (an order just locked by a service never carries it)."""
    held = getattr(order, REFUNDS_HELD, None)
    if held is not None:
        return held
    return amount_total(_refunds_pending(order=order)) + order_awaiting_approval(order)


def orders_with_refunds_held(orders: QuerySet[Order]) -> QuerySet[Order]:
    """``orders`` with what refunds hold of each annotated, in the same query."""

    def total(queryset: QuerySet) -> Subquery:
        return Subquery(
            queryset.values("order").annotate(total=Sum("amount")).values("total")[:1],
            output_field=_money(),
        )

    pending = total(_refunds_pending(order=OuterRef("pk")))
    awaiting = total(_approvals_awaiting(order=OuterRef("pk")))
    return orders.annotate(
        **{
            REFUNDS_HELD: Coalesce(pending, Value(0), output_field=_money())
            + Coalesce(awaiting, Value(0), output_field=_money())
        }
    )


def order_refundable_amount(order: Order) -> Decimal:
    """What can still be refunded of ``order``: paid, less refunds that succeeded, are
    pending, or await approval; nothing for an order that is not paid."""
    if order.status not in (OrderStatus.PAID, OrderStatus.REVOKED):
        return Decimal("0.00")
    refundable = order.paid_price - order.refunded_price - order_refunds_held(order)
    return max(refundable, Decimal("0.00"))


def refunds_visible_to(user: Any) -> QuerySet[Refund]:
    """The refunds a user may see: as ``orders_visible_to``, by their order."""
    refunds = Refund.objects.select_related("order")
    if _sees_everything(user):
        return scoped(refunds, user, "order__")
    return refunds.filter(order__user_bid=user_bid_for(user), order__deleted=0)


# ---- entitlements ----


def entitlements(*, user_bid: str, product_bids: list[str]) -> list[dict[str, Any]]:
    """Whether ``user_bid`` owns each of ``product_bids``, in one query on the orders'
    user index: owned while a live order is paid (a partial refund keeps it; a full
    refund or a revoke ends it), with the order and when it was paid. The earliest paid
    order answers when there are several."""
    owned: dict[str, tuple[str, Any]] = {}
    rows = (
        Order.objects.live()
        .filter(user_bid=user_bid, product_bid__in=product_bids, status=OrderStatus.PAID)
        .annotate(paid_at=_paid_at())
        .order_by("id")
        .values_list("product_bid", "order_bid", "paid_at", "created_at")
    )
    for product_bid, order_bid, paid, created in rows:
        owned.setdefault(product_bid, (order_bid, paid or created))
    return [
        {
            "user_bid": user_bid,
            "product_bid": bid,
            "owned": bid in owned,
            "order_bid": owned[bid][0] if bid in owned else None,
            "since": owned[bid][1] if bid in owned else None,
        }
        for bid in product_bids
    ]


def order_price_lines(order: Order, discount_lines: list[dict] | None = None) -> list[dict]:
    """The order's price line by line, as the API, the pages and the admin show it: the
    list price, then each promotion and coupon it took (negative); amounts in major units.
    ``discount_lines``: the order's, when already read (``order_discount_lines``)."""
    lines = [{"kind": "price", "label": "List price", "amount": order.payable_price}]
    if order.discount_price:
        if discount_lines is None:
            discount_lines = order_discount_lines([order.order_bid])[order.order_bid]
        lines += discount_lines
    return lines


ATTEMPTS_LISTED = 50


def order_attempts(order: Order) -> list[dict[str, Any]]:
    """The order's payment attempts on every channel it tried, newest first (the latest
    ``ATTEMPTS_LISTED``): one UNION ALL query over the channels this service runs, and
    the platform's own Alipay or WeChat Pay for an order of theirs (shown read only)."""
    channels = [*settings.PAYMENT_PROVIDERS]
    if order.payment_channel not in channels and registry.attempt_model(order.payment_channel):
        channels.append(order.payment_channel)
    parts = []
    for channel in channels:
        model = registry.attempt_model(channel)
        # Only annotations, in one order, so that every part has the same columns.
        parts.append(
            model.objects.filter(order_bid=order.order_bid)
            .annotate(
                ch=Value(channel),
                **model.listing(),
                minor=F("amount"),
                cur=F("currency"),
                code=F("status"),
                at=F("created_at"),
            )
            .values("ch", "bid", "how", "pid", "minor", "cur", "code", "at")
            .order_by()
        )
    every = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    rows = every.order_by("-at")[:ATTEMPTS_LISTED]
    return [
        {
            "payment_channel": row["ch"],
            "attempt_bid": row["bid"],
            "method": row["how"],
            "provider_payment_id": row["pid"] or "",
            "amount": display(to_major(row["minor"], row["cur"].lower())),
            "currency": row["cur"].lower(),
            "status": AttemptStatus(row["code"]).label,
            "status_code": row["code"],
            "created_at": row["at"],
            "runs_here": row["ch"] in settings.PAYMENT_PROVIDERS,
        }
        for row in rows
    ]


# ---- the support console: creator scope ----
#
# A staff account linked to creators (StaffCreator rows) sees only the orders of their
# courses: an order is in scope when its own ``creator_bid`` (the platform's column,
# copied from the product for orders made here) is one of them, or when its product is
# one of theirs (orders made before products carried their creator). Superusers, and
# staff with no link, see everything.

# The attribute a user object keeps its scope in, once read (one query a request).
SCOPE_ATTRIBUTE = "_orders_creator_scope"


def staff_creator_scope(user: Any) -> frozenset[str] | None:
    """The creator_bids whose orders ``user`` may see, or None for no restriction
    (a superuser, or an account with no creator link)."""
    if user.is_superuser:
        return None
    if not hasattr(user, SCOPE_ATTRIBUTE):
        bids = StaffCreator.objects.filter(user_id=user.pk).values_list("creator_bid", flat=True)
        setattr(user, SCOPE_ATTRIBUTE, frozenset(bids) or None)
    return getattr(user, SCOPE_ATTRIBUTE)


def scope_condition(scope: frozenset[str], prefix: str = "") -> Q:
    """The orders of the creators ``scope`` (``prefix``: the path to the order, e.g.
    ``order__``): two indexed conditions, the second on a creator's few products."""
    products = list(
        Product.objects.filter(creator_bid__in=scope).values_list("product_bid", flat=True)
    )
    return Q(**{f"{prefix}creator_bid__in": sorted(scope)}) | Q(
        **{f"{prefix}product_bid__in": products}
    )


def scoped(queryset: QuerySet, user: Any, prefix: str = "") -> QuerySet:
    """``queryset`` (of orders, or of rows reaching their order by ``prefix``) cut to
    what ``user`` may see."""
    scope = staff_creator_scope(user)
    return queryset if scope is None else queryset.filter(scope_condition(scope, prefix))


def order_bids_in_scope(user: Any) -> QuerySet | None:
    """The order_bids ``user`` may see, as a subquery (None: all), for rows that name
    their order by bid (payment attempts, inbox events)."""
    scope = staff_creator_scope(user)
    if scope is None:
        return None
    return Order.objects.filter(scope_condition(scope)).values("order_bid")


# ---- the support console: what a search term stands for ----

# At most this many accounts or products a term resolves to.
SEARCH_MATCHES = 100
# An amount as staff type it: 19.90, ¥19.90, CN¥19.90, US$ 6.99, 19.90 CNY, CNY19.90.
AMOUNT = re.compile(
    r"(?P<prefix>[A-Za-z]{0,3})\s*[^\w\s.]{0,3}\s*(?P<number>\d{1,8}(?:\.\d{1,2})?)"
    r"\s*(?P<suffix>[A-Za-z]{3})?"
)


def user_bids_for_account(term: str) -> list[str]:
    """The user_bids of the accounts ``term`` names: by e-mail (any case, the indexed
    ``auth_user.email``) when it has an ``@``, else by username (unique); a platform
    user's is their platform user_bid. One lookup."""
    accounts = get_user_model().objects.all()
    if "@" in term:
        accounts = accounts.filter(email__iexact=term)
    else:
        accounts = accounts.filter(username=term)
    rows = accounts.values_list("pk", "platform_identity__user_bid")[:SEARCH_MATCHES]
    return [platform_bid or str(pk) for pk, platform_bid in rows]


def product_bids_named(term: str) -> list[str]:
    """The products whose name contains ``term`` (any case): the products table is
    this service's own and small."""
    return list(
        Product.objects.filter(name__icontains=term).values_list("product_bid", flat=True)[
            :SEARCH_MATCHES
        ]
    )


def parse_amount(term: str) -> tuple[Decimal, str] | None:
    """An amount ``term`` names, with its currency code when it names one (lower case,
    else ""): ``19.90`` -> (19.90, ""), ``CNY 19.90`` -> (19.90, "cny"); None if it
    names none. Currency symbols are skipped (``¥`` is both CNY and JPY)."""
    found = AMOUNT.fullmatch(term.strip())
    if found is None:
        return None
    try:
        amount = Decimal(found["number"])
    except InvalidOperation:
        return None
    code = found["suffix"] or (found["prefix"] if len(found["prefix"]) == 3 else "")
    return amount, code.lower()
