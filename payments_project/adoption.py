"""Which version of the old order system's schema a database holds, and adopting it.

The old system's tables exist in two versions (see docs/operations.md, *Adopting the
legacy database*):

- ``pre_stripe``: ``order_orders`` and ``order_pingxx_orders`` as first created;
- ``current``: the platform's schema today: ``payment_channel``, ``creator_bid`` and
  ``payment_integration_bid`` on orders; ``biz_domain``, ``bill_order_bid`` and
  ``creator_bid`` on the Ping++ attempts; ``order_stripe_orders`` in the platform's
  layout; ``order_alipay_orders`` and ``order_wechatpay_orders``.

A database with none of these tables is ``new``: the migrations create them. The first
migration of ``orders`` and of ``payments`` decides which one it is, from the column
names, types and nullability information_schema gives (``detect``), records it in
``order_schema_adoption`` (``adopted_version``) and refuses anything else before it
changes anything. The migrations that replay the platform's own schema changes then
skip what a ``current`` database already has (``ExceptOn``), and their rollbacks leave
it as they found it.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

NEW = "new"
PRE_STRIPE = "pre_stripe"
CURRENT = "current"

RECORD_TABLE = "order_schema_adoption"

# Column name -> (type, nullable) as MariaDB and MySQL 8 report them (integer display
# widths stripped). Only names, types and nullability decide the version: comments
# and index names do not change what the service can do with a table.
_ORDERS_PRE = {
    "id": ("bigint", False),
    "order_bid": ("varchar(36)", False),
    "shifu_bid": ("varchar(36)", False),
    "user_bid": ("varchar(36)", False),
    "payable_price": ("decimal(10,2)", False),
    "paid_price": ("decimal(10,2)", False),
    "status": ("smallint", False),
    "deleted": ("smallint", False),
    "created_at": ("datetime", False),
    "updated_at": ("datetime", False),
}
_PINGXX_PRE = {
    "id": ("bigint", False),
    "pingxx_order_bid": ("varchar(36)", False),
    "user_bid": ("varchar(36)", False),
    "shifu_bid": ("varchar(36)", False),
    "order_bid": ("varchar(36)", False),
    "transaction_no": ("varchar(36)", False),
    "app_id": ("varchar(36)", False),
    "channel": ("varchar(36)", False),
    "amount": ("bigint", False),
    "currency": ("varchar(36)", False),
    "subject": ("varchar(255)", False),
    "body": ("varchar(255)", False),
    "client_ip": ("varchar(255)", False),
    "extra": ("text", False),
    "status": ("smallint", False),
    "charge_id": ("varchar(255)", False),
    "paid_at": ("datetime", False),
    "refunded_at": ("datetime", False),
    "closed_at": ("datetime", False),
    "failed_at": ("datetime", False),
    "refund_id": ("varchar(255)", False),
    "failure_code": ("varchar(255)", False),
    "failure_msg": ("varchar(255)", False),
    "charge_object": ("text", False),
    "deleted": ("smallint", False),
    "created_at": ("datetime", False),
    "updated_at": ("datetime", False),
}
_DOMAIN = {
    "biz_domain": ("varchar(16)", False),
    "bill_order_bid": ("varchar(36)", False),
    "creator_bid": ("varchar(36)", False),
}
_STRIPE = {
    "id": ("bigint", False),
    "stripe_order_bid": ("varchar(36)", False),
    "user_bid": ("varchar(36)", False),
    "shifu_bid": ("varchar(36)", False),
    "order_bid": ("varchar(36)", False),
    "payment_intent_id": ("varchar(255)", False),
    "checkout_session_id": ("varchar(255)", False),
    "latest_charge_id": ("varchar(255)", False),
    "amount": ("bigint", False),
    "currency": ("varchar(36)", False),
    "status": ("smallint", False),
    "receipt_url": ("varchar(255)", False),
    "payment_method": ("varchar(255)", False),
    "failure_code": ("varchar(255)", False),
    "failure_message": ("varchar(255)", False),
    "metadata_json": ("text", False),
    "payment_intent_object": ("text", False),
    "checkout_session_object": ("text", False),
    "deleted": ("smallint", False),
    "created_at": ("datetime", False),
    "updated_at": ("datetime", False),
    **_DOMAIN,
}


def _native(bid_column: str) -> dict[str, tuple[str, bool]]:
    return {
        "id": ("bigint", False),
        bid_column: ("varchar(36)", False),
        **_DOMAIN,
        "user_bid": ("varchar(36)", False),
        "shifu_bid": ("varchar(36)", False),
        "order_bid": ("varchar(36)", False),
        "provider_attempt_id": ("varchar(64)", False),
        "transaction_id": ("varchar(128)", False),
        "channel": ("varchar(36)", False),
        "amount": ("bigint", False),
        "currency": ("varchar(36)", False),
        "status": ("smallint", False),
        "raw_status": ("varchar(64)", False),
        "raw_request": ("text", False),
        "raw_response": ("text", False),
        "raw_notification": ("text", False),
        "metadata_json": ("text", False),
        "deleted": ("smallint", False),
        "created_at": ("datetime", False),
        "updated_at": ("datetime", False),
    }


SCHEMAS: dict[str, dict[str, dict[str, tuple[str, bool]]]] = {
    PRE_STRIPE: {
        "order_orders": _ORDERS_PRE,
        "order_pingxx_orders": _PINGXX_PRE,
    },
    CURRENT: {
        "order_orders": {
            **_ORDERS_PRE,
            "payment_channel": ("varchar(50)", False),
            "creator_bid": ("varchar(36)", False),
            "payment_integration_bid": ("varchar(36)", False),
        },
        "order_pingxx_orders": {**_PINGXX_PRE, **_DOMAIN},
        "order_stripe_orders": _STRIPE,
        "order_alipay_orders": _native("alipay_order_bid"),
        "order_wechatpay_orders": _native("wechatpay_order_bid"),
    },
}
# Every table either version has: a database holding some of them and not others
# is neither.
LEGACY_TABLES = tuple(SCHEMAS[CURRENT])


class UnknownSchema(RuntimeError):
    """The database holds order tables of neither known version: nothing was changed."""


def _normalise(column_type: str) -> str:
    # bigint(20) / smallint(6) on MariaDB, bigint / smallint on MySQL 8.
    base = column_type.lower().partition("(")[0]
    if base in ("bigint", "int", "smallint", "tinyint", "mediumint"):
        return base
    return column_type.lower()


def _found(connection: BaseDatabaseWrapper) -> dict[str, dict[str, tuple[str, bool]]]:
    """The legacy tables present and their columns, as ``SCHEMAS`` describes them."""
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        tables = [table for table in LEGACY_TABLES if table in existing]
        if not tables:
            return {}
        if connection.vendor != "mysql":
            return {
                table: {
                    column.name: ("?", bool(column.null_ok))
                    for column in connection.introspection.get_table_description(cursor, table)
                }
                for table in tables
            }
        placeholders = ", ".join(["%s"] * len(tables))
        where = f"TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({placeholders})"
        cursor.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM "  # noqa: S608
            f"information_schema.COLUMNS WHERE {where} ORDER BY TABLE_NAME, ORDINAL_POSITION",
            tables,
        )
        found: dict[str, dict[str, tuple[str, bool]]] = {table: {} for table in tables}
        for table, column, column_type, nullable in cursor.fetchall():
            found[table][column] = (_normalise(column_type), nullable == "YES")
        return found


def _matches(found: dict, expected: dict, *, types: bool) -> bool:
    if set(found) != set(expected):
        return False
    for table, columns in expected.items():
        if types and found[table] != columns:
            return False
        if not types and set(found[table]) != set(columns):
            return False
    return True


def _differences(found: dict, expected: dict) -> list[str]:
    lines = []
    for table in sorted(set(expected) | set(found)):
        if table not in found:
            lines.append(f"{table}: missing")
            continue
        if table not in expected:
            lines.append(f"{table}: not expected")
            continue
        have, want = found[table], expected[table]
        for column in want.keys() - have.keys():
            lines.append(f"{table}.{column}: missing")
        for column in have.keys() - want.keys():
            lines.append(f"{table}.{column}: not expected")
        for column in sorted(have.keys() & want.keys()):
            if have[column] != want[column] and have[column][0] != "?":
                lines.append(f"{table}.{column}: {have[column]}, expected {want[column]}")
    return lines


def detect(connection: BaseDatabaseWrapper) -> str:
    """``new``, ``pre_stripe`` or ``current``; ``UnknownSchema`` for anything else."""
    found = _found(connection)
    if not found:
        return NEW
    typed = connection.vendor == "mysql"
    for version in (PRE_STRIPE, CURRENT):
        if _matches(found, SCHEMAS[version], types=typed):
            return version
    closest = min((PRE_STRIPE, CURRENT), key=lambda v: len(_differences(found, SCHEMAS[v])))
    details = "\n  ".join(_differences(found, SCHEMAS[closest])[:20])
    raise UnknownSchema(
        "The database holds order tables of an unknown schema; nothing was changed.\n"
        f"Closest known version: {closest}. Differences:\n  {details}\n"
        "This service adopts the old order system's schema as it was before Stripe "
        "(pre_stripe) or as the platform has it today (current); see docs/operations.md."
    )


def recorded(connection: BaseDatabaseWrapper) -> bool:
    with connection.cursor() as cursor:
        return RECORD_TABLE in connection.introspection.table_names(cursor)


def adopted_version(connection: BaseDatabaseWrapper) -> str:
    """The version recorded when this database was adopted.

    Databases adopted before the record existed were all at ``pre_stripe`` (or new,
    which the first migrations created in the same layout): ``pre_stripe`` it is, so
    that no rollback ever drops a table this service did not create.
    """
    if not recorded(connection):
        return PRE_STRIPE
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT version FROM {RECORD_TABLE} ORDER BY id DESC LIMIT 1")  # noqa: S608
        row = cursor.fetchone()
    return row[0] if row else PRE_STRIPE


def adopt(connection: BaseDatabaseWrapper) -> str:
    """Decide and record the version, once; later calls read the record."""
    if recorded(connection):
        return adopted_version(connection)
    version = detect(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {RECORD_TABLE} (id INTEGER NOT NULL PRIMARY KEY, "
            "version VARCHAR(16) NOT NULL, adopted_at VARCHAR(32) NOT NULL)"
            + (
                " COMMENT='Version of the order schema this service adopted'"
                if connection.vendor == "mysql"
                else ""
            )
        )
        cursor.execute(
            f"INSERT INTO {RECORD_TABLE} (id, version, adopted_at) VALUES (1, %s, %s)",  # noqa: S608
            [version, timezone.now().isoformat(timespec="seconds")],
        )
    return version


def forget(connection: BaseDatabaseWrapper) -> None:
    """Drop the record once the tables it was about are gone (a full rollback of new)."""
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        if RECORD_TABLE in existing and not existing & set(LEGACY_TABLES):
            cursor.execute(f"DROP TABLE {RECORD_TABLE}")


class AdoptOrCreate(migrations.operations.base.Operation):
    """An initial ``CreateModel`` of a legacy table: adopted when the table is there.

    Forwards, the version is decided (and an unknown schema refused) before anything
    changes; the table is created only where it is missing (every table on a new
    database; a promo table the old system never made). Backwards, the tables of a new
    database are dropped; on an adopted one they stay, with their rows.
    """

    reversible = True

    def __init__(self, operation: migrations.CreateModel) -> None:
        self.operation = operation

    def deconstruct(self):
        return (self.__class__.__name__, [self.operation], {})

    def state_forwards(self, app_label, state):
        self.operation.state_forwards(app_label, state)

    def _table(self, state, app_label) -> str:
        return state.apps.get_model(app_label, self.operation.name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        adopt(connection)
        with connection.cursor() as cursor:
            exists = self._table(to_state, app_label) in connection.introspection.table_names(
                cursor
            )
        if not exists:
            self.operation.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        if adopted_version(connection) == NEW:
            self.operation.database_backwards(app_label, schema_editor, from_state, to_state)
            forget(connection)

    def describe(self):
        return f"Adopt or create {self.operation.name}"


class ExceptOn(migrations.operations.base.Operation):
    """``operation`` on the database unless it was adopted at one of ``versions``.

    For the platform's own schema changes, which a database at that version already
    has: the model state changes either way, the database only where it lacks them,
    and a rollback leaves what was there before this service.
    """

    reversible = True

    def __init__(self, operation, versions: tuple[str, ...] = (CURRENT,)) -> None:
        self.operation = operation
        self.versions = tuple(versions)

    def deconstruct(self):
        return (self.__class__.__name__, [self.operation], {"versions": self.versions})

    def state_forwards(self, app_label, state):
        self.operation.state_forwards(app_label, state)

    def _applies(self, schema_editor) -> bool:
        return adopted_version(schema_editor.connection) not in self.versions

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if self._applies(schema_editor):
            self.operation.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if self._applies(schema_editor):
            self.operation.database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return f"{self.operation.describe()} (except on {', '.join(self.versions)})"

    @property
    def reduces_to_sql(self):
        return False


class OnlyOn(ExceptOn):
    """``operation`` on the database only, and only where it was adopted at one of
    ``versions``: what the model state already holds but such a database lacks."""

    def state_forwards(self, app_label, state):
        pass

    def _applies(self, schema_editor) -> bool:
        return adopted_version(schema_editor.connection) in self.versions

    def describe(self):
        return f"{self.operation.describe()} (only on {', '.join(self.versions)})"
