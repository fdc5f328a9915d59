"""Outages answer JSON 503s, limits hold across processes, SQLite writers wait.

- The database going away (its connections cut and new ones refused, as when the
  server process is killed) makes every API, webhook and page URL answer 503
  ``service_unavailable`` with ``Retry-After``; the next request after it comes back
  is served again. On MariaDB, through a loopback proxy the test cuts.
- Redis, the shared cache, unreachable: the same JSON 503.
- Two processes count against one throttling limit through Redis.
- On a SQLite file, ten concurrent refund requests wait for each other (no
  ``database is locked``); a writer that still cannot get the lock answers 503
  ``database_busy``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import OrderStatus, Refund, RefundStatus
from tests.factories import ProductFactory, StaffFactory, UserFactory
from tests.redis_server import require_redis
from tests.sandbox import paid_through_sandbox
from tests.threads import run_together

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0]}")
    return client


def assert_outage(response, code: str = "service_unavailable") -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == code
    assert int(response["Retry-After"]) > 0


# ---- the database goes away ----


class CuttableProxy:
    """A loopback TCP proxy in front of the database: ``cut()`` closes every
    connection and refuses new ones, ``restore()`` lets them through again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def db_through_proxy(transactional_db):
    db = connection.settings_dict
    saved = (db["HOST"], db["PORT"])
    proxy = CuttableProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 3306))
    connection.close()
    db["HOST"], db["PORT"] = "127.0.0.1", str(proxy.port)
    yield proxy
    proxy.close()
    connection.close()
    db["HOST"], db["PORT"] = saved


@pytest.fixture
def live_service(db_through_proxy):
    """The service behind a real WSGI server on loopback, so each request ends as in
    production (``request_finished`` closes a broken connection)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


class Answer:
    """What a client sees of one HTTP answer."""

    def __init__(self, response) -> None:
        self.status_code = response.status_code
        self.content = response.content
        self.headers = response.headers

    def __getitem__(self, name: str) -> str:
        return self.headers[name]

    def json(self):
        import json

        return json.loads(self.content)


@pytest.mark.mariadb
def test_database_outage_answers_json_503_everywhere_and_recovers(
    db_through_proxy, live_service, settings
):
    import requests

    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = ["sandbox"]
    settings.DEFAULT_PAYMENT_CHANNEL = "sandbox"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_outage_test"
    token = Token.objects.create(user=UserFactory())
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token.key}"
    anonymous = requests.Session()

    def get(session, path):
        return Answer(session.get(live_service + path, timeout=30, allow_redirects=False))

    def post(session, path, body):
        return Answer(
            session.post(
                live_service + path,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
        )

    assert get(api, "/api/orders/").status_code == 200

    db_through_proxy.cut()  # open connections dropped, new ones refused
    assert_outage(get(api, "/api/orders/"))
    assert_outage(post(api, "/api/orders/", b'{"product": "%s"}' % (b"x" * 32)))
    assert_outage(get(api, "/api/products/"))
    webhook = post(anonymous, "/webhooks/sandbox/", b"{}")
    assert_outage(webhook)
    assert webhook.json()["payment_channel"] == "sandbox"
    assert_outage(post(anonymous, "/webhooks/pingxx/", b"{}"))
    assert_outage(post(anonymous, "/webhooks/stripe/", b"{}"))
    assert_outage(get(anonymous, "/"))  # the checkout page lists products
    assert get(anonymous, "/healthz").status_code == 503

    db_through_proxy.restore()  # the service recovers on its own
    assert get(api, "/api/orders/").status_code == 200
    assert get(anonymous, "/healthz").status_code == 200


# ---- Redis, the shared cache ----


@pytest.fixture
def _redis():
    return require_redis(REDIS_URL)


def test_cache_outage_answers_json_503(db, settings):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = ["sandbox"]
    settings.DEFAULT_PAYMENT_CHANNEL = "sandbox"
    product = ProductFactory()
    response = client_for(UserFactory()).post(
        "/api/orders/", {"product": product.product_bid}, format="json"
    )
    assert_outage(response)
    assert "cache" in response.json()["message"]


THROTTLE_SCRIPT = """
import django
django.setup()
from rest_framework.throttling import ScopedRateThrottle

class User:
    pk = 987654321
    is_authenticated = True

class Request:
    user = User()
    META = {"REMOTE_ADDR": "127.0.0.1"}

class View:
    throttle_scope = "orders"

print(sum(ScopedRateThrottle().allow_request(Request(), View()) for _ in range(10)))
"""


def allowed_in_two_processes(cache_url: str) -> list[int]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "CACHE_URL": cache_url,
        "API_THROTTLE_ORDERS": "6/hour",
        "DATABASE_URL": "sqlite:///:memory:",
    }
    allowed = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", THROTTLE_SCRIPT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        allowed.append(int(done.stdout.strip().splitlines()[-1]))
    return allowed


def test_two_processes_share_one_throttling_limit_through_redis(_redis):
    assert allowed_in_two_processes(REDIS_URL) == [6, 0]
    _redis.flushdb()
    # Local memory, the embedded default, is per process: each allows the whole limit.
    assert allowed_in_two_processes("locmemcache://") == [6, 6]


def test_cache_comes_from_cache_url():
    from payments_project import config

    values = config.load({"CACHE_URL": "redis://cache.internal:6379/2"})
    assert values["CACHE_URL"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.internal:6379/2",
    }
    assert config.load({})["CACHE_URL"]["BACKEND"].endswith("LocMemCache")
    assert django_settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")


# ---- SQLite, the embedded default, under concurrent writes ----


@pytest.fixture
def sqlite_file(transactional_db, tmp_path):
    """The test database copied to a file, which every new connection (one per
    thread) opens with the service's SQLite options."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's own locking; the MariaDB pass has row locks instead")
    path = tmp_path / "service.sqlite3"
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.close()
    db = connection.settings_dict
    saved = db["NAME"]
    # Django never closes an in-memory test database (it would vanish): set its
    # connection aside while this thread uses the file, and put it back after.
    memory = connection.connection
    connection.connection = None
    db["NAME"] = str(path)
    yield path
    connection.close()
    connection.connection = memory
    db["NAME"] = saved


def test_sqlite_options_make_writers_wait():
    options = django_settings.DATABASES["default"].get("OPTIONS", {})
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] == django_settings.DATABASE_BUSY_TIMEOUT
    assert "journal_mode=WAL" in options["init_command"]


def test_ten_concurrent_refunds_on_a_sqlite_file_wait_for_each_other(sqlite_file, settings, caplog):
    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = ["sandbox"]
    settings.DEFAULT_PAYMENT_CHANNEL = "sandbox"
    settings.REFUND_APPROVAL_THRESHOLDS = {"*": 10_000_000}
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    order = paid_through_sandbox(price="19.90")
    token = Token.objects.create(user=StaffFactory())

    def refund(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        response = client.post(
            "/api/refunds/",
            {"order": order.order_bid, "amount": "5.00", "reason": f"r{i}"},
            format="json",
        )
        return response.status_code, response.json()["code"] if response.status_code >= 400 else ""

    results = run_together(refund, 10)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(results).count((201, "")) == 3, results
    assert {r for r in results if r[0] != 201} == {(400, "refund_exceeds_refundable")}
    assert "database is locked" not in caplog.text
    order.refresh_from_db()
    assert order.refunded_price == Decimal("15.00")
    assert order.status == OrderStatus.PAID
    assert Refund.objects.filter(status=RefundStatus.SUCCEEDED).count() == 3


def test_a_writer_that_cannot_get_the_sqlite_lock_answers_503(sqlite_file, settings):
    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = ["sandbox"]
    settings.DEFAULT_PAYMENT_CHANNEL = "sandbox"
    product = ProductFactory()
    api = client_for(UserFactory())
    connection.close()  # the next connection waits 0.2 s for the lock
    connection.settings_dict["OPTIONS"] = {**connection.settings_dict["OPTIONS"], "timeout": 0.2}
    holder = sqlite3.connect(sqlite_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = api.post("/api/orders/", {"product": product.product_bid}, format="json")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        connection.close()
        connection.settings_dict["OPTIONS"] = {
            **connection.settings_dict["OPTIONS"],
            "timeout": django_settings.DATABASE_BUSY_TIMEOUT,
        }
    assert_outage(response, "database_busy")
    assert api.post(
        "/api/orders/", {"product": product.product_bid}, format="json"
    ).status_code in (
        200,
        201,
    )
    cache.clear()


def test_only_errors_a_retry_can_cure_count_as_outages():
    from django.db import OperationalError as Operational

    from payments_project.middleware import classify

    assert classify(Operational(2006, "Server has gone away"))[0] == "service_unavailable"
    assert classify(Operational(2003, "Can't connect"))[0] == "service_unavailable"
    assert classify(Operational(1213, "Deadlock found"))[0] == "database_busy"
    assert classify(Operational("database is locked"))[0] == "database_busy"
    # A missing column after a skipped migration is a bug to see, not an outage to retry.
    assert classify(Operational(1054, "Unknown column 'x' in 'field list'")) is None
    assert classify(ValueError("nope")) is None
