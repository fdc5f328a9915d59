"""The scratch database and its data: the schema (``manage.py migrate``), the reference
table, the fixtures (products, users and their API tokens, a staff session, dj-stripe's
rows), the orders loaded by bulk SQL, and the pools of one-off rows are in bench.pools.

Runs in the benchmark's own process, on the service's settings (bench.settings), after
``django.setup()``; only ``database_prepare`` and ``migrate`` run before it.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import environ
import MySQLdb

from bench.env import PINGXX_APP_ID, STRIPE_SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = 300
PRICES = [Decimal(p) for p in ("9.90", "19.90", "29.00", "49.00", "99.00", "199.00", "299.00")]
API_USER_ORDERS = 300  # the first orders loaded are the API user's: "a user with many orders"
POOL_USERS = 100  # per kind of one-off request (order create, pay start)
# Statuses like a shop's books, in percent: mostly paid; then timed out, unpaid, init,
# cancelled and refunded. Cumulative bounds over 0..99.
STATUS_SPREAD = (
    "CASE WHEN b < 70 THEN 502 WHEN b < 82 THEN 505 WHEN b < 87 THEN 504 "
    "WHEN b < 90 THEN 501 WHEN b < 95 THEN 506 ELSE 503 END"
)
TWO_YEARS = 2 * 365 * 86400
KEPT_TABLES = {"django_migrations", "django_content_type", "auth_permission"}


def bid(*parts: object) -> str:
    """A business id, the same in SQL (MD5(CONCAT(...))) and here."""
    text = "".join(str(p) for p in parts)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


# ---- the database ----


def _server(database_url: str):
    db = environ.Env.db_url_config(database_url)
    return MySQLdb.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 3306),
        user=db["USER"],
        password=db["PASSWORD"],
    )


def database_prepare(database_url: str, name: str, *, keep: bool) -> bool:
    """A fresh database, or with ``keep`` the existing one (emptied after migrate, by
    ``tables_empty``). True when it was kept."""
    server = _server(database_url)
    try:
        cursor = server.cursor()
        if keep and cursor.execute("SHOW DATABASES LIKE %s", [name]):
            return True
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return False
    finally:
        server.close()


def database_drop(database_url: str, name: str) -> None:
    server = _server(database_url)
    try:
        server.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        server.close()


def migrate(*, env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        raise RuntimeError(f"manage.py migrate failed; see {log}")


def _execute(*statements: str, params=None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, params)


def tables_empty() -> None:
    """Every table emptied but the schema's own (a database kept from an earlier run)."""
    from django.db import connection

    tables = [t for t in connection.introspection.table_names() if t not in KEPT_TABLES]
    _execute(
        "SET FOREIGN_KEY_CHECKS = 0",
        *[f"TRUNCATE TABLE `{table}`" for table in tables],
        "SET FOREIGN_KEY_CHECKS = 1",
    )


def reference_table_create() -> None:
    from bench.urls import REFERENCE_TABLE

    _execute(
        f"CREATE TABLE IF NOT EXISTS {REFERENCE_TABLE} (id BIGINT AUTO_INCREMENT "
        "PRIMARY KEY, created_at DATETIME(6) NOT NULL) ENGINE=InnoDB"
    )


def server_facts() -> dict[str, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT VERSION(), @@innodb_buffer_pool_size, @@innodb_flush_log_at_trx_commit"
        )
        version, pool, flush = cursor.fetchone()
    return {
        "version": version,
        "buffer_pool": f"{int(pool) // 2**20} MiB",
        "flush_log_at_trx_commit": str(flush),
    }


# ---- fixtures ----


@dataclass
class Fixtures:
    products: list[tuple[str, Decimal]]  # (product_bid, price in CNY)
    api_user_bid: str
    api_token: str
    create_users: list[tuple[str, str]]  # (user_bid, token): order creation
    pay_users: list[tuple[str, str]]  # (user_bid, token): payments started
    admin_cookie: str
    admin_order_pk: int
    used: dict[str, int] = field(default_factory=dict)  # one-off (user, product) pairs taken

    def pairs(self, kind: str, count: int) -> list[tuple[tuple[str, str], tuple[str, Decimal]]]:
        """``count`` (user, product) pairs of ``kind`` never handed out before."""
        users = self.create_users if kind == "create" else self.pay_users
        start = self.used.get(kind, 0)
        self.used[kind] = start + count
        if start + count > len(users) * len(self.products):
            raise RuntimeError(f"more {kind} pairs than users x products")
        return [
            (users[i % len(users)], self.products[(i // len(users)) % len(self.products)])
            for i in range(start, start + count)
        ]


def _users(prefix: str, count: int, **flags) -> list:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    User = get_user_model()
    User.objects.bulk_create(
        [
            User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com", password="!", **flags)  # noqa: S106
            for i in range(count)
        ]
    )
    users = list(User.objects.filter(username__startswith=prefix).order_by("id"))
    Token.objects.bulk_create([Token(key=Token.generate_key(), user=user) for user in users])
    tokens = dict(Token.objects.filter(user__in=users).values_list("user_id", "key"))
    return [(str(user.pk), tokens[user.pk], user) for user in users]


def fixtures_create() -> Fixtures:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from orders.models import Product

    Product.objects.bulk_create(
        [
            Product(
                product_bid=bid("bench-product-", n),
                name=f"Course {n}",
                price=PRICES[n % len(PRICES)],
                currency="cny",
            )
            for n in range(PRODUCTS)
        ]
    )
    products = [(bid("bench-product-", n), PRICES[n % len(PRICES)]) for n in range(PRODUCTS)]
    _execute("DROP TABLE IF EXISTS bench_products")
    _execute(
        "CREATE TABLE bench_products (n INT PRIMARY KEY, product_bid VARCHAR(36) NOT NULL,"
        " price DECIMAL(10,2) NOT NULL)"
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO bench_products VALUES (%s, %s, %s)",
            [(n, b, p) for n, (b, p) in enumerate(products)],
        )

    ((api_bid, api_token, _),) = _users("bench-api-", 1)
    create = [(b, t) for b, t, _ in _users("bench-create-", POOL_USERS)]
    pay = [(b, t) for b, t, _ in _users("bench-pay-", POOL_USERS)]
    ((_, _, admin),) = _users("bench-admin-", 1, is_staff=True, is_superuser=True)
    session = SessionStore()
    session[SESSION_KEY] = str(admin.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = admin.get_session_auth_hash()
    session.create()

    _stripe_rows()
    call_command(
        "stripe_webhook_endpoint",
        url="https://pay.example.com/webhooks/stripe/",
        stdout=io.StringIO(),
    )
    return Fixtures(
        products=products,
        api_user_bid=api_bid,
        api_token=api_token,
        create_users=create,
        pay_users=pay,
        admin_cookie=f"sessionid={session.session_key}",
        admin_order_pk=_admin_order(products[1]),
    )


def coupon_create(tag: str) -> str:
    """A shared 15 % code for every product, with room for any number of orders and no
    per-user cap (the bench's users buy many products with it, as the old system's
    shared codes allowed); the code. A per-user cap adds one indexed count."""
    from datetime import timedelta

    from django.utils import timezone

    from promos.batches import BatchSpec, batch_create

    now = timezone.now()
    spec = BatchSpec(
        name=f"bench {tag}",
        discount_type=702,
        value=Decimal("15"),
        currency="",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=1),
        products=[],
        usage=801,
        code=f"BENCH-{tag}",
        total_limit=10**9,
        per_user_limit=0,
    )
    _, (code,) = batch_create(spec=spec, actor=None)
    return code


def _stripe_rows() -> None:
    """The Account and APIKey rows dj-stripe looks its key's owner up in (as the test
    suite's localstripe fixture makes them): no GET /v1/account."""
    from djstripe.enums import APIKeyType
    from djstripe.models import Account, APIKey

    account = Account.objects.create(
        id="acct_bench000000000000",
        livemode=False,
        stripe_data={"id": "acct_bench000000000000", "object": "account", "type": "standard"},
    )
    APIKey.objects.create(
        secret=STRIPE_SECRET_KEY,
        type=APIKeyType.secret,
        livemode=False,
        name="bench",
        djstripe_owner_account=account,
    )


def _admin_order(product: tuple[str, Decimal]) -> int:
    """A paid order with a history and two Ping++ attempts: the admin change page's."""
    from orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
    from payments.models import AttemptStatus, PingxxOrder

    product_bid, price = product
    order = Order.objects.create(
        product_bid=product_bid,
        user_bid=bid("bench-user-", 1),
        payable_price=price,
        paid_price=price,
        status=OrderStatus.PAID,
    )
    history = [
        (OrderEventKind.NOTE, None, OrderStatus.INIT, "created"),
        (OrderEventKind.STATUS, OrderStatus.INIT, OrderStatus.UNPAID, "payment started"),
        (OrderEventKind.ATTEMPT, None, None, "attempt via pingxx:alipay_qr"),
        (OrderEventKind.ATTEMPT, None, None, "attempt via pingxx:alipay_qr"),
        (OrderEventKind.STATUS, OrderStatus.UNPAID, OrderStatus.PAID, "paid"),
    ]
    OrderEvent.objects.bulk_create(
        [
            OrderEvent(
                order=order,
                kind=kind,
                from_status=before,
                to_status=after,
                message=message,
                source="api",
            )
            for kind, before, after, message in history
        ]
    )
    for n, status in enumerate((AttemptStatus.CLOSED, AttemptStatus.PAID)):
        PingxxOrder.objects.create(
            pingxx_order_bid=bid("bench-admin-attempt-", n),
            user_bid=order.user_bid,
            product_bid=product_bid,
            order_bid=order.order_bid,
            transaction_no=bid("bench-admin-attempt-", n),
            app_id=PINGXX_APP_ID,
            channel="alipay_qr",
            amount=int(price * 100),
            currency="CNY",
            subject="Course",
            body="Course",
            client_ip="127.0.0.1",
            status=status,
            charge_id=f"ch_bench{n:020d}",
        )
    return order.pk


# ---- orders, by bulk SQL ----


def orders_load(first: int, last: int, fixtures: Fixtures, *, chunk: int = 200_000) -> None:
    """Orders ``first``..``last`` (sequence numbers) with a shop's spread: statuses as
    STATUS_SPREAD, created over the two years up to now in the order of their ids (as a
    shop's table grows: the newest days are the newest rows), many users (about four
    orders each), the API user's among them, every product; then one "paid" history
    line per paid order (the API's ``paid_at`` reads it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM order_orders")
        (before,) = cursor.fetchone()
        cursor.execute("SET unique_checks = 0")
    users = max(last // 4, 10)
    for low in range(first, last + 1, chunk):
        high = min(low + chunk - 1, last)
        # Numbers and fixed text only: nothing here comes from outside.
        _execute(f"""
            INSERT INTO order_orders (order_bid, shifu_bid, user_bid, payable_price,
                paid_price, refunded_price, status, deleted, created_at, updated_at,
                payment_channel, currency)
            SELECT MD5(CONCAT('bench-order-', s.seq)), p.product_bid,
                CASE WHEN s.seq <= {API_USER_ORDERS} OR s.seq % 1000 = 0
                     THEN '{fixtures.api_user_bid}'
                     ELSE MD5(CONCAT('bench-user-', (s.seq * 7919) % {users})) END,
                p.price,
                CASE WHEN s.status IN (502, 503) THEN p.price ELSE 0 END,
                CASE WHEN s.status = 503 THEN p.price ELSE 0 END,
                s.status, s.seq % 500 = 0, s.created, s.created + INTERVAL 3 MINUTE,
                CASE WHEN s.seq % 10 < 7 THEN 'pingxx' WHEN s.seq % 10 < 9 THEN 'stripe'
                     ELSE 'sandbox' END,
                CASE WHEN s.seq % 10 IN (7, 8) THEN 'usd' ELSE 'cny' END
            FROM (SELECT seq, {STATUS_SPREAD} AS status, UTC_TIMESTAMP()
                      - INTERVAL (({last} - seq) * {TWO_YEARS} DIV {last - first + 1}) SECOND
                      AS created
                  FROM (SELECT seq, (seq * 37) % 100 AS b FROM seq_{low}_to_{high}) AS r) AS s
            JOIN bench_products p ON p.n = s.seq % {PRODUCTS}
        """)  # noqa: S608
    _execute(f"""
        INSERT INTO order_events (order_id, kind, from_status, to_status, actor_id, source,
            message, data, created_at)
        SELECT id, 'status', 504, 502, NULL, CONCAT(payment_channel, ':evt_bench'),
            'paid', '{{}}', created_at + INTERVAL 2 MINUTE
        FROM order_orders WHERE id > {before} AND status IN (502, 503)
    """)  # noqa: S608
    _execute("SET unique_checks = 1", "ANALYZE TABLE order_orders, order_events")


def orders_count() -> int:
    from orders.models import Order

    return Order.objects.count()


def timed(function, *args, **kwargs) -> tuple[object, float]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started
