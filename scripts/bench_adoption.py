"""Adopting a live legacy database online (run by scripts/bench-adoption).

For each schema version of ../shared/legacy (``pre_stripe``, ``current``): a scratch
MariaDB database gets the version's DDL and ``make_legacy_rows.py --orders N`` (default
1,000,000), loaded through the ``mysql`` client. Then ``manage.py migrate`` runs for
this service's apps (orders, payments, promos, bridge; Django's own apps come with
them) while one thread per legacy table keeps writing single rows, as the old system
would: each updates one random row (its ``updated_at`` and ``deleted`` set to what they
are) and records how long the statement took, and one more inserts new orders naming only
the old system's columns. The reference, measured in the same run just before, is the
same writers' longest wait over 10 s with nothing else running.

Printed per version: the load time, each migration's time (Django's own measure), the
longest writer wait during each, the longest overall against the reference, and the
total. Exits 1 when a writer waited 1 s or more (the target).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import MySQLdb

BASE_DIR = Path(__file__).resolve().parent.parent
LEGACY = BASE_DIR.parent / "shared" / "legacy"
TARGET_SECONDS = 1.0
APPS = ("orders", "payments", "promos", "bridge")
NEW_ORDERS = "order_orders (insert)"
WRITTEN = {
    "pre_stripe": ("order_orders", NEW_ORDERS, "order_pingxx_orders"),
    "current": ("order_orders", NEW_ORDERS, "order_pingxx_orders", "order_stripe_orders"),
}
APPLYING = re.compile(r"Applying (\w+)\.(\w+)\.\.\.")
APPLIED = re.compile(r"Applying (\w+)\.(\w+)\.\.\.(?:.*?)OK \(([\d.]+)s\)")


class Writers:
    """One thread per table, each updating random rows one at a time."""

    def __init__(self, connect, tables: tuple[str, ...]) -> None:
        self.connect = connect
        self.tables = tables
        self.stop = threading.Event()
        self.waits: list[tuple[float, float, str]] = []  # (started, seconds, table)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(t,)) for t in tables]

    def _run(self, table: str) -> None:
        if table == NEW_ORDERS:
            return self._insert()
        conn = self.connect()
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT MIN(id), MAX(id) FROM {table}")
            low, high = cursor.fetchone()
        rng = random.Random(table)
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                with conn.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {table} SET updated_at = updated_at + INTERVAL 0 SECOND, "
                        "deleted = deleted WHERE id = %s",
                        (rng.randint(low, high),),
                    )
            except MySQLdb.OperationalError as exc:  # a table being swapped: count the wait
                print(f"    writer on {table}: {exc}", file=sys.stderr)
            took = time.monotonic() - started
            with self.lock:
                self.waits.append((started, took, table))
            time.sleep(0.005)
        conn.close()

    def _insert(self) -> None:
        """New orders, as the old system inserts them: naming only its own columns."""
        conn = self.connect()
        number = 0
        while not self.stop.is_set():
            number += 1
            started = time.monotonic()
            try:
                with conn.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO order_orders (order_bid, shifu_bid, user_bid, "
                        "payable_price, paid_price, status, deleted, created_at, updated_at) "
                        "VALUES (%s, 's', 'u', 9.90, 0, 501, 0, NOW(), NOW())",
                        (f"bench-{threading.get_ident()}-{number}",),
                    )
            except MySQLdb.OperationalError as exc:
                print(f"    inserting an order: {exc}", file=sys.stderr)
            took = time.monotonic() - started
            with self.lock:
                self.waits.append((started, took, NEW_ORDERS))
            time.sleep(0.005)
        conn.close()

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def longest(self, start: float = 0.0, end: float = float("inf")) -> tuple[float, str]:
        inside = [(took, table) for began, took, table in self.waits if start <= began < end]
        return max(inside, default=(0.0, ""))


def server(url: str) -> tuple[dict, str]:
    parts = urlsplit(url)
    return (
        {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 3306,
            "user": parts.username or "root",
            "passwd": parts.password or "",
        },
        parts.path.lstrip("/"),
    )


def load(kwargs: dict, name: str, version: str, orders: int) -> float:
    started = time.monotonic()
    client = ["mysql", f"-h{kwargs['host']}", f"-P{kwargs['port']}", f"-u{kwargs['user']}"]
    if kwargs["passwd"]:
        client.append(f"-p{kwargs['passwd']}")
    ddl = (LEGACY / f"{version}_schema.mysql.sql").read_bytes()
    subprocess.run([*client, name], input=ddl, check=True)
    generator = subprocess.Popen(
        [
            sys.executable,
            str(LEGACY / "make_legacy_rows.py"),
            "--orders",
            str(orders),
            "--schema",
            version,
        ],
        stdout=subprocess.PIPE,
    )
    subprocess.run([*client, name], stdin=generator.stdout, check=True)
    if generator.wait() != 0:
        raise SystemExit("make_legacy_rows.py failed")
    return time.monotonic() - started


def migrate(url: str, writers: Writers) -> list[tuple[str, float, float, float]]:
    """Each migration: (name, Django's time, wall start, wall end)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_ENV_FILE": "",
        "DJANGO_SETTINGS_MODULE": "payments_project.settings",
        "SECRET_KEY": "bench-adoption-" + "x" * 50,
    }
    found = []
    for app in APPS:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "migrate", app, "-v", "2"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        current, began = None, 0.0
        for line in process.stdout:
            now = time.monotonic()
            applying = APPLYING.search(line)
            if applying:
                current, began = f"{applying[1]} {applying[2]}", now
            # Django prints "Applying x... OK (n s)" as one line, at the end: the
            # migration ran over the n seconds before it arrived.
            applied = APPLIED.search(line)
            if applied:
                seconds = float(applied[3])
                found.append((f"{applied[1]} {applied[2]}", seconds, now - seconds, now))
                current = None
            elif line.strip().startswith("OK") and current:
                seconds = float(re.search(r"([\d.]+)s", line)[1])
                found.append((current, seconds, min(began, now - seconds), now))
                current = None
            if "Error" in line or "Traceback" in line:
                print("    " + line.rstrip())
        if process.wait() != 0:
            raise SystemExit(f"migrate {app} failed")
    return found


def run_version(kwargs: dict, base: str, version: str, orders: int) -> bool:
    name = f"{base}_{version}_{os.getpid()}"  # two runs never share a database
    admin = MySQLdb.connect(**kwargs, autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        print(f"\n== {version}: {orders:,} orders ==")
        loaded = load(kwargs, name, version, orders)
        with admin.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM `{name}`.order_orders")
            (count,) = cursor.fetchone()
        print(f"loaded {count:,} orders in {loaded:.0f} s")

        def connect():
            return MySQLdb.connect(**kwargs, database=name, autocommit=True)

        with Writers(connect, WRITTEN[version]) as idle:
            time.sleep(10)
        reference, _ = idle.longest()
        url = urlunsplit(
            ("mysql", f"{kwargs['user']}@{kwargs['host']}:{kwargs['port']}", f"/{name}", "", "")
        )
        started = time.monotonic()
        with Writers(connect, WRITTEN[version]) as writers:
            steps = migrate(url, writers)
        total = time.monotonic() - started
        print(f"{'migration':42} {'time':>8} {'longest write':>14}")
        for step, seconds, began, ended in steps:
            wait, table = writers.longest(began, ended)
            if seconds >= 0.5 or wait >= 0.1:
                print(f"{step:42} {seconds:7.2f}s {wait:13.3f}s  {table}")
        quick = [s for s in steps if s[1] < 0.5 and writers.longest(s[2], s[3])[0] < 0.1]
        print(f"{len(quick)} more migrations, each under 0.5 s with writes under 0.1 s")
        longest, table = writers.longest()
        writes = len(writers.waits)
        print(
            f"all migrations: {total:.1f} s wall; {writes:,} single-row writes meanwhile; "
            f"longest wait {longest:.3f} s ({table}) = {longest / max(reference, 1e-6):.1f} x "
            f"the reference {reference:.3f} s (the same writers, idle); target < "
            f"{TARGET_SECONDS:.0f} s"
        )
        return longest < TARGET_SECONDS
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--versions", default="pre_stripe,current")
    args = parser.parse_args()
    url = os.environ.get("BENCH_MARIADB_URL", "mysql://root@127.0.0.1:3306/bench_adoption")
    kwargs, base = server(url)
    results = [
        run_version(kwargs, base or "bench_adoption", v, args.orders)
        for v in args.versions.split(",")
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
