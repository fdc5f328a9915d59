"""Throw-away MariaDB/MySQL databases holding the legacy order schema.

The migration tests load the fixture of ``../shared/legacy`` (the DDL the old order
system created and the rows its generator prints) into a database of their own, run
``manage.py`` against it in a subprocess, and read it back with plain MySQLdb, so that
what they compare is what the server holds, not what Django's models make of it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import MySQLdb
import pytest
from django.conf import settings
from MySQLdb.constants import CLIENT

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_LEGACY = REPO_ROOT.parent / "shared" / "legacy"
LEGACY_DDL = SHARED_LEGACY / "pre_stripe_schema.mysql.sql"
CURRENT_DDL = SHARED_LEGACY / "current_schema.mysql.sql"
DDL = {"pre_stripe": LEGACY_DDL, "current": CURRENT_DDL}
LEGACY_ROWS_SCRIPT = SHARED_LEGACY / "make_legacy_rows.py"

LEGACY_TABLES = ("order_orders", "order_pingxx_orders")
CURRENT_TABLES = (
    *LEGACY_TABLES,
    "order_stripe_orders",
    "order_alipay_orders",
    "order_wechatpay_orders",
)
NEW_TABLES = ("order_stripe_orders", "order_products", "order_refunds", "payment_webhook_events")

MANAGE_TIMEOUT = 300
SECRET_KEY = secrets.token_urlsafe(50)


def require_legacy_fixture() -> None:
    """Skip without the shared legacy fixture; in CI, fail instead: it must be there."""
    if LEGACY_DDL.is_file() and CURRENT_DDL.is_file() and LEGACY_ROWS_SCRIPT.is_file():
        return
    message = f"the legacy fixture is missing: {LEGACY_DDL} and {LEGACY_ROWS_SCRIPT}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _server() -> dict[str, Any]:
    """Where the test database lives: the scratch databases go on the same server."""
    db = settings.DATABASES["default"]
    return {
        "host": db.get("HOST") or "127.0.0.1",
        "port": int(db.get("PORT") or 3306),
        "user": db.get("USER") or "root",
        "password": db.get("PASSWORD") or "",
    }


def connect(database: str | None = None, *, multi_statements: bool = False):
    server = _server()
    kwargs: dict[str, Any] = {
        "host": server["host"],
        "port": server["port"],
        "user": server["user"],
        "passwd": server["password"],
        "charset": "utf8mb4",
        "autocommit": True,
    }
    if database:
        kwargs["database"] = database
    if multi_statements:
        kwargs["client_flag"] = CLIENT.MULTI_STATEMENTS
    return MySQLdb.connect(**kwargs)


def legacy_rows_sql(orders: int, seed: int = 7, schema: str = "pre_stripe") -> str:
    """The INSERT statements of the fixture's generator, run as the README says."""
    result = subprocess.run(
        [
            sys.executable,
            str(LEGACY_ROWS_SCRIPT),
            "--orders",
            str(orders),
            "--seed",
            str(seed),
            "--schema",
            schema,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def run_manage(database_url: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``manage.py`` in a subprocess against ``database_url``, as an operator would."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_ENV_FILE="",
        # The service's own settings, not the suite's (pytest-django exported those),
        # with a production-grade key: its system checks refuse the development one.
        DJANGO_SETTINGS_MODULE="payments_project.settings",
        SECRET_KEY=SECRET_KEY,
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MANAGE_TIMEOUT,
    )


def check_manage(database_url: str, *args: str) -> subprocess.CompletedProcess:
    """``run_manage``, failing the test with the command's output when it fails."""
    result = run_manage(database_url, *args)
    assert result.returncode == 0, (
        f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
        f"{result.stdout}\n{result.stderr}"
    )
    return result


class ScratchDatabase:
    """One database of the test server, created for a test and dropped after it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._conn = connect(name)

    @property
    def url(self) -> str:
        server = _server()
        credentials = quote(server["user"], safe="")
        if server["password"]:
            credentials += ":" + quote(server["password"], safe="")
        return f"mysql://{credentials}@{server['host']}:{server['port']}/{self.name}"

    def close(self) -> None:
        self._conn.close()

    # ---- SQL ----

    def query(self, sql: str, params: tuple | list | None = None) -> list[tuple]:
        with self._conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def execute(self, sql: str, params: tuple | list | None = None) -> int:
        with self._conn.cursor() as cursor:
            return cursor.execute(sql, params)

    def run_script(self, sql: str) -> None:
        """Run a whole SQL file (several statements), failing on the first error."""
        conn = connect(self.name, multi_statements=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                while cursor.nextset() is not None:
                    pass
        finally:
            conn.close()

    def load_legacy_schema(self, version: str = "pre_stripe") -> None:
        self.run_script(DDL[version].read_text())

    def load_legacy_rows(self, orders: int, seed: int = 7, version: str = "pre_stripe") -> None:
        self.run_script(legacy_rows_sql(orders, seed, version))

    # ---- manage.py ----

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        """Run ``manage.py`` against this database, as an operator would."""
        return run_manage(self.url, *args)

    def manage_ok(self, *args: str) -> subprocess.CompletedProcess:
        return check_manage(self.url, *args)

    # ---- reading it back ----

    def tables(self) -> set[str]:
        rows = self.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            (self.name,),
        )
        return {row[0] for row in rows}

    def columns(self, table: str) -> list[str]:
        rows = self.query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (self.name, table),
        )
        return [row[0] for row in rows]

    def column_comments(self, table: str) -> dict[str, str]:
        rows = self.query(
            "SELECT COLUMN_NAME, COLUMN_COMMENT FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (self.name, table),
        )
        return dict(rows)

    def table_comment(self, table: str) -> str:
        rows = self.query(
            "SELECT TABLE_COMMENT FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (self.name, table),
        )
        return rows[0][0]

    def applied_migrations(self, app: str) -> set[str]:
        rows = self.query("SELECT name FROM django_migrations WHERE app = %s", (app,))
        return {row[0] for row in rows}

    def snapshot(self, tables: tuple[str, ...] = LEGACY_TABLES) -> dict[str, Snapshot]:
        """Every row of ``tables``, every column they have now, ordered by id."""
        return {table: Snapshot.take(self, table) for table in tables}

    def schema(self, tables: tuple[str, ...]) -> dict[str, Any]:
        """What information_schema says about ``tables``, in comparable form."""
        placeholders = ", ".join(["%s"] * len(tables))
        where = f"TABLE_SCHEMA = %s AND TABLE_NAME IN ({placeholders})"
        params = (self.name, *tables)
        columns = self.query(
            "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, "
            "COLUMN_DEFAULT, COLUMN_COMMENT, COLLATION_NAME, EXTRA "
            f"FROM information_schema.COLUMNS WHERE {where} "
            "ORDER BY TABLE_NAME, ORDINAL_POSITION",
            params,
        )
        index_rows = self.query(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME "
            f"FROM information_schema.STATISTICS WHERE {where} "
            "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
            params,
        )
        indexes: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {}
        for table, index, non_unique, column in index_rows:
            unique_flag, cols = indexes.get((table, index), (int(non_unique), ()))
            indexes[(table, index)] = (unique_flag, (*cols, column))
        table_rows = self.query(
            "SELECT TABLE_NAME, TABLE_COMMENT, ENGINE, TABLE_COLLATION "
            f"FROM information_schema.TABLES WHERE {where} ORDER BY TABLE_NAME",
            params,
        )
        constraints = self.query(
            "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE "
            f"FROM information_schema.TABLE_CONSTRAINTS WHERE {where} "
            "ORDER BY TABLE_NAME, CONSTRAINT_NAME",
            params,
        )
        return {
            "tables": table_rows,
            "columns": columns,
            "indexes": indexes,
            "constraints": constraints,
        }


class Snapshot:
    """The rows of one table at one moment: its columns and every row, by id."""

    def __init__(self, table: str, columns: list[str], rows: dict[Any, tuple]) -> None:
        self.table = table
        self.columns = columns
        self.rows = rows

    @classmethod
    def take(cls, db: ScratchDatabase, table: str, columns: list[str] | None = None) -> Snapshot:
        columns = columns or db.columns(table)
        assert columns[0] == "id"
        select = ", ".join(f"`{column}`" for column in columns)
        rows = db.query(f"SELECT {select} FROM `{table}` ORDER BY id")
        return cls(table, columns, {row[0]: row for row in rows})

    def differences(
        self, db: ScratchDatabase, ignore: tuple[str, ...] = (), limit: int = 20
    ) -> list[str]:
        """How the rows of the table differ now from this snapshot, column by column.

        Only the snapshot's columns are compared (columns added since do not count),
        except those in ``ignore``.
        """
        now = Snapshot.take(db, self.table, self.columns)
        found = []
        missing = self.rows.keys() - now.rows.keys()
        added = now.rows.keys() - self.rows.keys()
        if missing:
            found.append(f"{self.table}: {len(missing)} rows gone, e.g. ids {sorted(missing)[:5]}")
        if added:
            found.append(f"{self.table}: {len(added)} rows added, e.g. ids {sorted(added)[:5]}")
        for pk in sorted(self.rows.keys() & now.rows.keys()):
            for column, before, after in zip(
                self.columns, self.rows[pk], now.rows[pk], strict=True
            ):
                if column in ignore:
                    continue
                if before != after or type(before) is not type(after):
                    found.append(f"{self.table} id={pk} {column}: {before!r} -> {after!r}")
                    if len(found) >= limit:
                        return found
        return found


@contextmanager
def scratch_database(prefix: str = "legacy") -> Iterator[ScratchDatabase]:
    """A new empty utf8mb4 database, dropped afterwards even when the test fails."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = connect()
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        db = ScratchDatabase(name)
        try:
            yield db
        finally:
            db.close()
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.close()
