"""Helpers for data migrations that must not lock a large legacy table at once."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max, Min, QuerySet

BATCH_SIZE = 5_000


def update_in_batches(queryset: QuerySet, batch_size: int = BATCH_SIZE, **values) -> int:
    """Apply ``queryset.update(**values)`` one primary-key range at a time.

    Each range is its own short transaction, so a table of millions of rows is never
    locked by one statement and the legacy system can keep writing meanwhile. Returns
    the number of rows changed.
    """
    bounds = queryset.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return 0
    changed = 0
    start = bounds["low"]
    while start <= bounds["high"]:
        with transaction.atomic(using=queryset.db):
            changed += queryset.filter(pk__gte=start, pk__lt=start + batch_size).update(**values)
        start += batch_size
    return changed


def duplicates(queryset: QuerySet, field: str, limit: int = 5) -> list:
    """Up to ``limit`` values of ``field`` that more than one row of ``queryset`` holds."""
    from django.db.models import Count

    rows = (
        queryset.values(field)
        .annotate(rows=Count("pk"))
        .filter(rows__gt=1)
        .order_by(field)
        .values_list(field, flat=True)[:limit]
    )
    return list(rows)


class LegacyDataConflict(RuntimeError):
    """Legacy rows that a new constraint would refuse; the migration stops before it."""


def require_unique(queryset: QuerySet, field: str) -> None:
    """Stop with a clear message when ``field`` holds duplicate values."""
    found = duplicates(queryset, field)
    if found:
        column = queryset.model._meta.get_field(field).column
        table = queryset.model._meta.db_table
        raise LegacyDataConflict(
            f"{table}.{column} must be unique, but some values are held by several rows "
            f"(for example {found!r}). Resolve these rows, then run migrate again; "
            f"nothing was changed by this migration."
        )


def require_none(queryset: QuerySet, what: str) -> None:
    """Stop with a clear message when ``queryset`` finds rows that break ``what``."""
    sample = list(queryset.values_list("pk", flat=True)[:5])
    if sample:
        table = queryset.model._meta.db_table
        raise LegacyDataConflict(
            f"{table}: rows with id {sample!r} (and maybe more) break {what}. Resolve "
            f"these rows, then run migrate again; nothing was changed by this migration."
        )


def on_mysql(sql: str):
    """A RunPython function that runs ``sql`` on MySQL/MariaDB and does nothing elsewhere."""

    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "mysql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    return run
