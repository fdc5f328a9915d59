"""The migrations: adopting the legacy database, rolling back to it, and their helpers.

The suite runs with ``--no-migrations``, so the migrations are exercised here through
``manage.py`` in a subprocess, against databases of their own: a copy of the legacy
MariaDB database (the fixture of ``../shared/legacy``) or a temporary SQLite file.
"""

from __future__ import annotations

import sqlite3
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection, models
from django.test.utils import CaptureQueriesContext

from orders.models import Order, OrderStatus
from payments_project.migration_utils import (
    LegacyDataConflict,
    require_none,
    require_unique,
    update_in_batches,
)
from tests.project.legacy_db import (
    LEGACY_TABLES,
    NEW_TABLES,
    ScratchDatabase,
    check_manage,
    require_legacy_fixture,
    run_manage,
    scratch_database,
)

OUR_APPS = ("orders", "payments")
REFUNDED = 503

# Unapplies every later migration of both apps: they all depend on orders 0002+.
ROLL_BACK = ("migrate", "orders", "0001_initial")


def migrate_our_apps(database_url: str, *options: str) -> subprocess.CompletedProcess:
    """``manage.py migrate <app> *options`` for each of our apps, stopping at a failure.

    The documented adoption is a plain ``manage.py migrate``. Here only our apps
    are migrated (they pull auth and contenttypes by dependency): dj-stripe's migrations
    take about a minute on MariaDB and none of ours depend on them.
    """
    for app in OUR_APPS:
        result = run_manage(database_url, "migrate", app, *options)
        if result.returncode != 0:
            break
    return result


def check_migrate_our_apps(database_url: str, *options: str) -> None:
    result = migrate_our_apps(database_url, *options)
    assert result.returncode == 0, f"migrate failed:\n{result.stdout}\n{result.stderr}"


def our_models() -> list[type[models.Model]]:
    return [
        model
        for app in OUR_APPS
        for model in apps.get_app_config(app).get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    ]


def our_tables() -> set[str]:
    tables = {model._meta.db_table for model in our_models()}
    assert set(LEGACY_TABLES) | set(NEW_TABLES) <= tables
    return tables


def our_applied(db: ScratchDatabase) -> set[tuple[str, str]]:
    rows = db.query("SELECT app, name FROM django_migrations WHERE app IN ('orders', 'payments')")
    return set(rows)


def our_migrations() -> set[tuple[str, str]]:
    # Read from disk: the suite's --no-migrations hides them from Django's loader.
    found = set()
    for app in OUR_APPS:
        folder = Path(apps.get_app_config(app).path) / "migrations"
        found |= {(app, path.stem) for path in folder.glob("[0-9][0-9][0-9][0-9]_*.py")}
    assert len(found) >= 2
    return found


# ---- adopting the legacy MariaDB database ----


def assert_adopted(db: ScratchDatabase, snapshot: dict) -> None:
    """The state after the migrations: legacy values kept, new columns filled in."""
    # Every legacy value is kept.
    changed = [
        difference for table in LEGACY_TABLES for difference in snapshot[table].differences(db)
    ]
    assert changed == []

    assert (
        db.query(
            "SELECT id, payment_channel, currency FROM order_orders "
            "WHERE NOT (payment_channel <=> 'pingxx' AND currency <=> 'cny')"
        )
        == []
    )
    assert (
        db.query(
            "SELECT id, status, paid_price, refunded_price FROM order_orders "
            "WHERE NOT refunded_price <=> IF(status = %s, paid_price, 0)",
            (REFUNDED,),
        )
        == []
    )

    assert set(NEW_TABLES) <= db.tables()
    assert our_tables() <= db.tables()

    missing_comments = []
    for model in our_models():
        table = model._meta.db_table
        if db.table_comment(table) != (model._meta.db_table_comment or ""):
            missing_comments.append((table, None, db.table_comment(table)))
        comments = db.column_comments(table)
        for field in model._meta.concrete_fields:
            if comments.get(field.column) != (field.db_comment or ""):
                missing_comments.append((table, field.column, comments.get(field.column)))
    assert missing_comments == [], "columns whose comment is not the model's db_comment"


PINGXX_ATTEMPT_COLUMNS = (
    "pingxx_order_bid, user_bid, shifu_bid, order_bid, transaction_no, app_id, channel, "
    "amount, currency, subject, body, client_ip, extra, status, charge_id, paid_at, "
    "refunded_at, closed_at, failed_at, refund_id, failure_code, failure_msg, charge_object, "
    "deleted, created_at, updated_at"
)


def assert_legacy_system_can_still_insert(db: ScratchDatabase) -> None:
    """Rows inserted by the old code, which names only its columns and leaves
    pingxx_order_bid empty, stay valid during the switch-over."""
    db.execute("START TRANSACTION")
    try:
        db.execute(
            "INSERT INTO order_orders (order_bid, shifu_bid, user_bid, payable_price, "
            "paid_price, status, deleted, created_at, updated_at) VALUES ('from-legacy-code', "
            "'s', 'u', 9.90, 9.90, 502, 0, '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
        )
        for order_no in ("legacyorderno1", "legacyorderno2"):
            db.execute(
                f"INSERT INTO order_pingxx_orders ({PINGXX_ATTEMPT_COLUMNS}) VALUES ('', 'u', "
                f"'s', 'from-legacy-code', '{order_no}', 'app', 'alipay_qr', 990, 'CNY', 'S', "
                "'B', '127.0.0.1', '{}', 0, '', '2025-01-01', '2025-01-01', '2025-01-01', "
                "'2025-01-01', '', '', '', '', 0, '2025-01-01', '2025-01-01')"
            )
        row = db.query(
            "SELECT payment_channel, currency, refunded_price FROM order_orders "
            "WHERE order_bid = 'from-legacy-code'"
        )
        attempts = db.query(
            "SELECT COUNT(*) FROM order_pingxx_orders WHERE order_bid = 'from-legacy-code'"
        )
    finally:
        db.execute("ROLLBACK")
    assert row == [("pingxx", "cny", Decimal("0.00"))]
    assert attempts == [(2,)]


@pytest.mark.mariadb
def test_legacy_database_is_adopted_rolled_back_and_adopted_again():
    require_legacy_fixture()
    with scratch_database("legacy") as db, scratch_database("legacy_ddl") as pristine:
        db.load_legacy_schema()
        db.load_legacy_rows(orders=2000)
        pristine.load_legacy_schema()
        snapshot = db.snapshot()
        orders = snapshot["order_orders"]
        status = orders.columns.index("status")
        paid = orders.columns.index("paid_price")
        # The fixture has what the checks are about: refunded orders that were paid for,
        # and Ping++ attempts whose business id the legacy code left empty.
        assert any(row[status] == REFUNDED and row[paid] > 0 for row in orders.rows.values())
        attempts = snapshot["order_pingxx_orders"]
        bid = attempts.columns.index("pingxx_order_bid")
        assert len(attempts.rows) > 1000
        assert {row[bid] for row in attempts.rows.values()} == {""}

        check_migrate_our_apps(db.url)
        assert our_applied(db) == our_migrations()
        assert_adopted(db, snapshot)
        assert_legacy_system_can_still_insert(db)
        tables = tuple(sorted(our_tables()))
        adopted_schema = db.schema(tables)

        db.manage_ok(*ROLL_BACK)
        assert db.schema(LEGACY_TABLES) == pristine.schema(LEGACY_TABLES)
        assert db.tables() & our_tables() == set(LEGACY_TABLES)
        assert [d for table in LEGACY_TABLES for d in snapshot[table].differences(db)] == []
        assert our_applied(db) == {("orders", "0001_initial"), ("payments", "0001_initial")}

        # Applied again: 0001 of both apps stayed recorded.
        check_migrate_our_apps(db.url)
        assert_adopted(db, snapshot)
        assert db.schema(tables) == adopted_schema


@pytest.mark.mariadb
@pytest.mark.parametrize(
    ("table", "column", "migration"),
    [
        ("order_orders", "order_bid", ("orders", "0007_order_constraints")),
        ("order_pingxx_orders", "transaction_no", ("payments", "0004_pingxx_constraints")),
    ],
)
def test_duplicate_legacy_values_stop_the_migration_with_a_clear_message(table, column, migration):
    require_legacy_fixture()
    with scratch_database("legacy_dup") as db:
        db.load_legacy_schema()
        db.load_legacy_rows(orders=60)
        [(first,)] = db.query(f"SELECT {column} FROM {table} WHERE id = 1")
        [(second,)] = db.query(f"SELECT {column} FROM {table} WHERE id = 2")
        db.execute(f"UPDATE {table} SET {column} = %s WHERE id = 2", (first,))
        snapshot = db.snapshot()

        result = migrate_our_apps(db.url)

        assert result.returncode != 0
        assert "LegacyDataConflict" in result.stderr
        assert f"{table}.{column} must be unique" in result.stderr
        assert first in result.stderr
        app, name = migration
        assert name not in db.applied_migrations(app)
        indexes = db.schema((table,))["indexes"]
        assert (table, f"uq_{table}_{column}") not in indexes
        assert indexes[(table, f"ix_{table}_{column}")] == (1, (column,))
        # Every legacy value is kept (the migrations before this one only add columns);
        # for Ping++ attempts that includes the business ids not filled in yet.
        assert [d for t in LEGACY_TABLES for d in snapshot[t].differences(db)] == []

        # Resolving the rows, as the message says, lets the migration through.
        db.execute(f"UPDATE {table} SET {column} = %s WHERE id = 2", (second,))
        check_migrate_our_apps(db.url)
        assert name in db.applied_migrations(app)


@pytest.mark.mariadb
@pytest.mark.django_db
def test_mariadb_connection_is_utf8mb4_and_read_committed():
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@character_set_connection, @@character_set_client")
        assert cursor.fetchone() == ("utf8mb4", "utf8mb4")
        # MariaDB before 11.1 names it tx_isolation, MySQL 8 transaction_isolation.
        cursor.execute(
            "SHOW SESSION VARIABLES WHERE Variable_name IN "
            "('tx_isolation', 'transaction_isolation')"
        )
        levels = {value for _name, value in cursor.fetchall()}
    assert levels == {"READ-COMMITTED"}


# ---- every migration, from nothing and back to nothing ----


def assert_round_trip(database_url: str, read) -> None:
    """Apply, unapply to zero, apply again; ``read(tables)`` gives (tables, schema, applied)."""
    tables = tuple(sorted(our_tables()))
    check_migrate_our_apps(database_url)
    found, schema, applied = read(tables)
    assert found == set(tables)
    assert applied == our_migrations()

    check_manage(database_url, "migrate", "orders", "zero")
    found, _schema, applied = read(tables)
    assert found == set()
    assert applied == set()

    check_migrate_our_apps(database_url)
    assert read(tables) == (set(tables), schema, our_migrations())


def test_migrations_apply_from_nothing_unapply_to_zero_and_apply_again(tmp_path):
    path = tmp_path / "migrations.sqlite3"

    def read(tables):
        marks = ", ".join("?" * len(tables))
        with sqlite3.connect(path) as conn:
            schema = conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master "
                f"WHERE tbl_name IN ({marks}) ORDER BY name",
                tables,
            ).fetchall()
            applied = conn.execute(
                "SELECT app, name FROM django_migrations WHERE app IN ('orders', 'payments')"
            ).fetchall()
        found = {name for kind, name, _table, _sql in schema if kind == "table"}
        return found, schema, set(applied)

    assert_round_trip(f"sqlite:///{path}", read)


@pytest.mark.mariadb
def test_migrations_apply_from_nothing_on_mariadb_unapply_and_apply_again():
    with scratch_database("migrations") as db:

        def read(tables):
            return db.tables() & set(tables), db.schema(tables), our_applied(db)

        assert_round_trip(db.url, read)


def test_models_have_no_changes_missing_from_the_migrations(tmp_path):
    result = check_manage(
        f"sqlite:///{tmp_path / 'makemigrations.sqlite3'}", "makemigrations", "--check", "--dry-run"
    )
    assert "No changes detected" in result.stdout


# ---- the helpers of the data migrations ----


def make_orders(ids_and_statuses: dict[int, int]) -> None:
    Order.objects.bulk_create(
        Order(
            id=pk,
            order_bid=f"order-{pk}",
            product_bid="product",
            user_bid=f"user-{pk}",
            payable_price=Decimal("9.90"),
            paid_price=Decimal("9.90"),
            status=status,
        )
        for pk, status in ids_and_statuses.items()
    )


@pytest.mark.django_db
def test_update_in_batches_updates_every_matching_row_range_by_range():
    # Ten rows, ids with gaps; matching rows at both ends of the id range.
    statuses = {1: 503, 2: 502, 3: 503, 4: 503, 7: 502, 8: 503, 9: 502, 15: 502, 21: 503, 22: 503}
    make_orders(statuses)
    matching = {pk for pk, status in statuses.items() if status == REFUNDED}

    with CaptureQueriesContext(connection) as queries:
        changed = update_in_batches(
            Order.objects.filter(status=OrderStatus.REFUNDED), batch_size=3, currency="usd"
        )

    assert changed == len(matching)
    assert dict(Order.objects.values_list("pk", "currency")) == {
        pk: "usd" if pk in matching else "cny" for pk in statuses
    }
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    # ids 1..22 in ranges of 3: one UPDATE per range, none of them over the whole table.
    assert len(updates) == 8


@pytest.mark.django_db
def test_update_in_batches_does_nothing_without_matching_rows():
    make_orders({1: 502, 2: 502})
    with CaptureQueriesContext(connection) as queries:
        changed = update_in_batches(Order.objects.filter(status=503), batch_size=3, currency="usd")
    assert changed == 0
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert set(Order.objects.values_list("currency", flat=True)) == {"cny"}


@pytest.mark.django_db
def test_require_unique_names_the_column_and_the_duplicate_values():
    make_orders({1: 502, 2: 502, 3: 502})
    Order.objects.filter(pk__in=[1, 2]).update(user_bid="same-user")

    with pytest.raises(LegacyDataConflict, match=r"order_orders\.user_bid .*'same-user'"):
        require_unique(Order.objects.all(), "user_bid")
    # The message names the database column, not the model field.
    with pytest.raises(LegacyDataConflict, match=r"order_orders\.shifu_bid .*'product'"):
        require_unique(Order.objects.all(), "product_bid")

    require_unique(Order.objects.exclude(pk=2), "user_bid")
    require_unique(Order.objects.all(), "order_bid")


@pytest.mark.django_db
def test_require_none_names_the_rows_that_break_the_rule():
    make_orders({1: 502, 2: 503, 3: 503})
    with pytest.raises(LegacyDataConflict, match=r"order_orders: rows with id \[2, 3\]"):
        require_none(Order.objects.filter(status=503).order_by("pk"), "no refunds")
    require_none(Order.objects.filter(status=505), "no timeouts")
