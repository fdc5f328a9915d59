"""Helpers shared by the admins of the money tables.

Support staff browse orders, payment attempts, refunds and the webhook inbox here. The
tables hold millions of rows, so list pages never count a whole table, never filter
through ``SELECT DISTINCT`` over it and never query once per row; and money records are
shown, never changed: state changes go through the services.
"""

from __future__ import annotations

import json
import pprint
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.core.paginator import Paginator
from django.db import models
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from payments_project.db import parse_legacy_object
from payments_project.money import format_minor, format_money

EMPTY = "-"

# The values of the payment_channel / channel columns of orders, refunds and the inbox.
PAYMENT_CHANNELS = ("pingxx", "stripe", "sandbox")

PRE_STYLE = "white-space: pre-wrap; word-break: break-all; max-height: 40em; overflow: auto"


# ---- Lists over large tables ----


class CappedCountPaginator(Paginator):
    """A paginator that counts at most ``count_cap`` rows.

    ``COUNT(*)`` over a million-row InnoDB table reads a whole index, for every page
    view. This one counts over a bounded subquery instead,
    ``SELECT COUNT(*) FROM (SELECT ... LIMIT cap + 1) subquery``, which reads at most
    cap + 1 index entries whatever the size of the table. Past the cap the list offers
    the first ``count_cap`` rows (in pages) and says "10000+" (see
    templates/admin/pagination.html); a search or a filter narrows it to the rest.

    The cap must stay above the admin's ``list_per_page`` and ``list_max_show_all``
    (200): the changelist loads the whole queryset, unsliced, when the count fits on one
    page or when "Show all" is allowed.
    """

    count_cap = 10_000

    @cached_property
    def _bounded_count(self) -> int:
        return self.object_list[: self.count_cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._bounded_count, self.count_cap)

    @property
    def count_capped(self) -> bool:
        """Whether there are more rows than were counted."""
        return self._bounded_count > self.count_cap


class LargeTableAdminMixin:
    """List-page options for tables too large to count or scan on every page view."""

    paginator = CappedCountPaginator
    # The default runs a second, unfiltered COUNT(*) for "N results (M total)".
    show_full_result_count = False
    # Facet counts run one COUNT per filter choice over the table.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50


# ---- Rows some staff may not see ----

# Who may see which orders is the orders app's to say (the kernel imports no app): it
# registers here a function of a user answering the order_bids they may see (a
# subquery) or None for all of them, and the admins of rows that name their order by
# bid (payment attempts, the webhook inbox) filter on it.
_order_bid_scopes: list[Callable[[Any], Any]] = []


def register_order_bid_scope(scope: Callable[[Any], Any]) -> None:
    """Register ``scope(user) -> order_bids subquery | None`` (once)."""
    if scope not in _order_bid_scopes:
        _order_bid_scopes.append(scope)


class OrderBidScopedAdminMixin:
    """Rows naming an order by ``order_bid_field``: listed only for orders the staff
    user may see (see ``register_order_bid_scope``); another's row is not found."""

    order_bid_field = "order_bid"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        for scope in _order_bid_scopes:
            order_bids = scope(request.user)
            if order_bids is not None:
                queryset = queryset.filter(**{f"{self.order_bid_field}__in": order_bids})
        return queryset


# Likewise for rows that name their creator (a creator's merchant accounts): the orders
# app registers ``scope(user) -> creator_bids | None`` (None: every creator's).
_creator_scopes: list[Callable[[Any], Any]] = []


def register_creator_scope(scope: Callable[[Any], Any]) -> None:
    """Register ``scope(user) -> creator_bids | None`` (once)."""
    if scope not in _creator_scopes:
        _creator_scopes.append(scope)


def creator_scope(user: Any) -> frozenset[str] | None:
    """The creator_bids whose rows ``user`` may see; None for every creator's."""
    found: frozenset[str] | None = None
    for scope in _creator_scopes:
        bids = scope(user)
        if bids is not None:
            found = frozenset(bids) if found is None else found & frozenset(bids)
    return found


class CreatorBidScopedAdminMixin:
    """Rows naming their creator by ``creator_bid_field``: listed only for the creators
    the staff user may see (``register_creator_scope``); another's row is not found."""

    creator_bid_field = "creator_bid"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        scope = creator_scope(request.user)
        if scope is not None:
            queryset = queryset.filter(**{f"{self.creator_bid_field}__in": sorted(scope)})
        return queryset


class ReadOnlyAdminMixin:
    """Money records: browsable with the view permission, never added, changed or deleted.

    ``obj=None`` fits both ``ModelAdmin`` and ``InlineModelAdmin`` signatures.
    """

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class FixedValuesFilter(admin.SimpleListFilter):
    """A filter on a column whose possible values are known in advance.

    Django's default filter for a plain CharField lists the values found in the table,
    with ``SELECT DISTINCT`` over every row on each page view. The parameter is the
    field name, so ``?payment_channel=stripe`` links work, for unlisted values too.
    """

    values: Sequence[str] = ()

    def lookups(self, request, model_admin):
        return [(value, value) for value in self.values]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(**{self.parameter_name: self.value()})


def fixed_values_filter(field: str, title: str, values: Sequence[str]) -> type[FixedValuesFilter]:
    """A ``FixedValuesFilter`` on ``field`` offering ``values``."""
    name = "".join(part.title() for part in field.split("_")) + "Filter"
    return type(
        name,
        (FixedValuesFilter,),
        {"parameter_name": field, "title": title, "values": tuple(values)},
    )


# ---- Links ----


def admin_change_url(model: type[models.Model], pk: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])


def admin_changelist_url(model: type[models.Model], **filters: Any) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def link(url: str, text: Any) -> SafeString:
    return format_html('<a href="{}">{}</a>', url, text)


# ---- Values ----


# A major-unit amount with its currency as the reader reads it (``CN¥19.90``), and a
# minor-unit one (a channel record's) shown in major units.
money = format_money
minor_money = format_minor


def staff_name(user: Any) -> str:
    """A staff member as text, not a link: an account's page is for those who manage
    accounts, and a link the reader may not open answers 403."""
    return user.get_username() if user is not None else EMPTY


def label_with_code(obj: models.Model, field: str = "status") -> str:
    """The human label of a coded column and its legacy code: ``paid (502)``."""
    value = getattr(obj, field)
    labels = dict(obj._meta.get_field(field).flatchoices)
    return f"{labels.get(value, 'unknown')} ({value})"


def display(value: Any) -> str:
    """A value as the admin shows it in lists: dates in the current time zone."""
    return display_for_value(value, EMPTY)


# ---- Raw provider payloads ----


def pretty_json(value: Any) -> SafeString | str:
    """``value`` as JSON, keys sorted, indented by 2, non-ASCII kept, HTML-escaped.

    Values JSON cannot hold (a legacy repr with tuple keys, say) fall back to pprint.
    """
    if value is None:
        return EMPTY
    try:
        text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = pprint.pformat(value, indent=2)
    return preformatted(text)


def pretty_or_raw(parsed: Any, raw: str) -> SafeString | str:
    """The parsed payload pretty-printed, or the raw text when it could not be parsed."""
    if parsed is None:
        return preformatted(raw)
    return pretty_json(parsed)


def pretty_legacy_object(text: str) -> SafeString | str:
    """A TEXT column holding JSON or a legacy Python repr, pretty-printed when it parses."""
    return pretty_or_raw(parse_legacy_object(text), text)


def preformatted(text: str) -> SafeString | str:
    """Text verbatim in a ``<pre>``, HTML-escaped."""
    if not text:
        return EMPTY
    return format_html('<pre style="{}">{}</pre>', PRE_STYLE, text)


def html_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> SafeString | str:
    """A small table for a read-only field; cells are escaped unless already safe."""
    rows = list(rows)
    if not rows:
        return EMPTY
    head = format_html_join("", "<th>{}</th>", ((header,) for header in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)
