"""Helpers for data migrations that must not lock a large legacy table at once."""

from __future__ import annotations

import re

from django.db import migrations, transaction
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


class AddCheckConstraint(migrations.AddConstraint):
    """``AddConstraint`` of a CHECK constraint that never rebuilds a table on MySQL.

    MariaDB and MySQL 8 can add a CHECK constraint only by copying the table, which
    blocks its writers for as long as the copy takes (13.6 s on a million legacy
    orders). There the rule is enforced by ``BEFORE INSERT`` and ``BEFORE UPDATE``
    triggers instead: creating one is a change of metadata, and they refuse a row the
    same way, with the error a CHECK constraint gives (``IntegrityError`` in Django).
    The rows already there are checked by the migration before. Other databases get
    the constraint itself.
    """

    def _triggers(self, model, schema_editor) -> list[tuple[str, str]]:
        connection = schema_editor.connection
        condition = re.sub(
            r"`([^`]+)`", r"NEW.`\1`", self.constraint._get_check_sql(model, schema_editor)
        )
        errno = 4025 if connection.mysql_is_mariadb else 3819
        table = model._meta.db_table
        name = self.constraint.name
        triggers = []
        for event, suffix in (("INSERT", "bi"), ("UPDATE", "bu")):
            trigger = f"{name}_{suffix}"
            triggers.append(
                (
                    trigger,
                    f"CREATE TRIGGER `{trigger}` BEFORE {event} ON `{table}` FOR EACH ROW "
                    f"BEGIN IF NOT ({condition}) THEN SIGNAL SQLSTATE '23000' SET "
                    f"MESSAGE_TEXT = 'CONSTRAINT `{name}` failed for `{table}`', "
                    f"MYSQL_ERRNO = {errno}; END IF; END",
                )
            )
        return triggers

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if schema_editor.connection.vendor != "mysql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        for trigger, sql in self._triggers(model, schema_editor):
            # Idempotent: a run stopped after it (MySQL's DDL is not transactional).
            schema_editor.execute(f"DROP TRIGGER IF EXISTS `{trigger}`", params=None)
            schema_editor.execute(sql, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if schema_editor.connection.vendor != "mysql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        for trigger, _sql in self._triggers(model, schema_editor):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS `{trigger}`", params=None)
        # A database migrated by an earlier version has the CHECK constraint itself.
        table, name = model._meta.db_table, self.constraint.name
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS WHERE "
                "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND CONSTRAINT_NAME = %s "
                "AND CONSTRAINT_TYPE = 'CHECK'",
                [table, name],
            )
            (found,) = cursor.fetchone()
        if found:
            schema_editor.execute(f"ALTER TABLE `{table}` DROP CONSTRAINT `{name}`", params=None)

    def describe(self):
        return f"{super().describe()} (as triggers on MySQL)"


class AddIndexOnline(migrations.AddIndex):
    """``AddIndex`` that on MySQL/MariaDB asks for ``ALGORITHM=INPLACE, LOCK=NONE``.

    InnoDB builds a secondary index in place with writes going on; naming the algorithm
    and the lock makes the server refuse the change rather than fall back to copying
    the table (and blocking its writers) should it ever be unable to. Other databases
    get the plain ``AddIndex``; undoing it drops the index the same way.
    """

    def _alter(self, schema_editor, model, clause: str) -> None:
        quote = schema_editor.quote_name
        schema_editor.execute(
            f"ALTER TABLE {quote(model._meta.db_table)} {clause}, ALGORITHM=INPLACE, LOCK=NONE"
        )

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if schema_editor.connection.vendor != "mysql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        quote = schema_editor.quote_name
        columns = ", ".join(
            quote(model._meta.get_field(field.lstrip("-")).column) for field in self.index.fields
        )
        self._alter(schema_editor, model, f"ADD INDEX {quote(self.index.name)} ({columns})")
        return None

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if schema_editor.connection.vendor != "mysql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        self._alter(schema_editor, model, f"DROP INDEX {schema_editor.quote_name(self.index.name)}")
        return None
