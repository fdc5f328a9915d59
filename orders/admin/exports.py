"""CSV export of the order and refund lists, as filtered and searched on screen.

The "Export CSV" link of a list carries its query string (filters and search) to
``<list>/export/``, which builds the same changelist (so the same filters, search and
creator scope apply), then streams the rows: Django's streaming CSV pattern, a
``csv.writer`` over a buffer that hands each line back, in a ``StreamingHttpResponse``.

Rows are read in chunks of ``EXPORT_CHUNK`` by primary key, newest first (keyset
pagination: ``id < last id of the chunk before``), each chunk one indexed query plus one
lookup of its products' titles. Not ``QuerySet.iterator()``: on MySQL the driver loads
a whole result set into memory before the first row comes out, which is what an export
of 100k orders must not do; a chunk is all that is ever held.

Cells are written for machines: amounts as plain major-unit decimals (``19.90``, with the
currency in its own column), times in ISO 8601. A text cell that a spreadsheet would take
for a formula (beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets
a leading apostrophe; amounts are numbers and stay as they are, negative ones included.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

# Rows read in one query; the most an export holds in memory at once.
EXPORT_CHUNK = 1_000
# What a spreadsheet reads as the start of a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# A byte order mark first, so that spreadsheets read the UTF-8 (Chinese titles) as such.
BOM = "\ufeff"


class Echo:
    """A file-like object whose ``write`` returns what it was given (Django's pattern
    for streaming CSV): ``csv.writer`` then formats one line at a time."""

    def write(self, value: str) -> str:
        return value


def cell(value: Any) -> str | Decimal | int:
    """One CSV cell: numbers as they are, times in ISO 8601, text guarded against
    formula injection."""
    if value is None:
        return ""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    text = str(value)
    # A spreadsheet skips leading blanks before it decides that a cell is a formula.
    return "'" + text if text.lstrip(" \u3000").startswith(FORMULA_START) else text


def chunks(queryset: QuerySet, size: int | None = None) -> Iterator[list]:
    """The rows of ``queryset``, newest first, a list of at most ``size`` at a time,
    each read by one query after the last primary key of the chunk before."""
    size = size or EXPORT_CHUNK
    queryset = queryset.order_by("-pk")
    last = None
    while True:
        page = queryset if last is None else queryset.filter(pk__lt=last)
        rows = list(page[:size])
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        last = rows[-1].pk


def csv_stream(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield BOM + writer.writerow(header)
    for row in rows:
        yield writer.writerow([cell(value) for value in row])


class CsvExportMixin:
    """An ``export/`` view beside a list: the list's rows, as filtered, in CSV. The
    admin says what a row is: ``export_header`` and ``export_rows(chunk)``."""

    export_header: tuple[str, ...] = ()
    export_filename = "export"

    def export_rows(self, chunk: list) -> Iterable[Iterable[Any]]:
        raise NotImplementedError

    def export_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset

    def _export_url_name(self) -> str:
        opts = self.model._meta
        return f"{opts.app_label}_{opts.model_name}_export"

    def get_urls(self):
        view = self.admin_site.admin_view(self.export_view)
        return [path("export/", view, name=self._export_url_name()), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        export_url = reverse(f"admin:{self._export_url_name()}")
        extra_context = {**(extra_context or {}), "export_url": export_url}
        return super().changelist_view(request, extra_context)

    def export_view(self, request):
        """The list's rows as CSV: staff with the view permission, their scope only."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        request.GET = request.GET.copy()
        request.GET.pop(PAGE_VAR, None)  # every page, not the one on screen
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter.", content_type="text/plain")
        queryset = self.export_queryset(changelist.queryset)
        rows = (row for chunk in chunks(queryset) for row in self.export_rows(chunk))
        response = StreamingHttpResponse(
            csv_stream(list(self.export_header), rows), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = (
            f'attachment; filename="{self.export_filename}-{stamp}.csv"'
        )
        return response


def currency_code(currency: str) -> str:
    """The ISO 4217 code as it is written: upper case."""
    return (currency or "").upper()
