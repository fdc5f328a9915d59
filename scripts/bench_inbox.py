"""How much the webhook inbox grows under forged deliveries (run by scripts/bench-inbox).

On a scratch MariaDB database of its own (created, then dropped), with only the inbox
table, it posts 1,000 forged 60 KiB Ping++ deliveries (signed with a key that is not
Ping++'s, so the real signature check refuses them) through the real webhook view, in
two scenarios: the same body 1,000 times (a replay) and 1,000 different bodies. For
each it prints the table's growth (data + indexes from information_schema, after
ANALYZE TABLE) and the bytes stored in its text columns, beside a reference measured in
the same run: the same 1,000 deliveries stored whole, one row each (the behaviour
before the inbox was bounded). Distinct bodies past WEBHOOK_REJECTED_ROWS_PER_HOUR are
only counted. Exits 1 when a scenario misses the 2 MB target.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

COUNT = 1000
BODY_BYTES = 60 * 1024
URL = "/webhooks/pingxx/"
MB = 1024 * 1024


def size(n: float) -> str:
    return f"{n / MB:.2f} MB" if abs(n) >= MB / 10 else f"{n / 1024:.0f} KB"


def server_and_database() -> tuple[str, str]:
    url = os.environ.get("BENCH_MARIADB_URL", "mysql://root@127.0.0.1:3306/bench_inbox")
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "bench_inbox"
    return urlunsplit(parts._replace(path=f"/{name}")), name


def configure(database_url: str) -> None:
    """The service's own settings, with the pingxx channel checking signatures."""
    from Crypto.PublicKey import RSA

    ping = RSA.generate(2048)
    merchant = RSA.generate(2048)
    os.environ.update(
        {
            "DJANGO_ENV_FILE": "",
            "DJANGO_SETTINGS_MODULE": "payments_project.settings",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-inbox-" + "x" * 50,
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "testserver",
            "LOG_LEVEL": "ERROR",
            "PAYMENT_CHANNELS_ENABLED": "pingxx",
            "DEFAULT_PAYMENT_CHANNEL": "pingxx",
            "PINGXX_SECRET_KEY": "sk_test_bench000000000000000000",
            "PINGXX_APP_ID": "app_bench0000000000",
            "PINGXX_PRIVATE_KEY": merchant.export_key().decode(),
            "PINGXX_WEBHOOK_PUBLIC_KEY": ping.public_key().export_key().decode(),
        }
    )


def forged_body(note: str) -> bytes:
    """A Ping++ charge.succeeded event padded to 60 KiB of JSON."""
    event = {
        "id": "evt_bench000000000000000000",
        "object": "event",
        "type": "charge.succeeded",
        "livemode": False,
        "created": 1_700_000_000,
        "data": {
            "object": {
                "id": "ch_bench000000000000000000",
                "object": "charge",
                "order_no": "bench",
                "amount": 1990,
                "currency": "cny",
                "paid": True,
                "metadata": {"note": note, "padding": ""},
            }
        },
    }
    missing = BODY_BYTES - len(json.dumps(event).encode())
    event["data"]["object"]["metadata"]["padding"] = "p" * missing
    body = json.dumps(event).encode()
    assert len(body) == BODY_BYTES
    return body


def main() -> int:
    database_url, name = server_and_database()
    configure(database_url)

    import environ
    import MySQLdb

    db = environ.Env.db_url_config(database_url)
    server = MySQLdb.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 3306),
        user=db["USER"],
        password=db["PASSWORD"],
    )
    server.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    server.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        return bench(name)
    finally:
        from django.db import connection

        connection.close()
        server.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        server.close()


def bench(name: str) -> int:
    import django

    # The service serves its collected static files; a benchmark collects none.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()

    from Crypto.Hash import SHA256
    from Crypto.PublicKey import RSA
    from Crypto.Signature import pkcs1_15
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from payments.models import InboxStatus, SignatureStatus, WebhookEvent

    table = WebhookEvent._meta.db_table
    with connection.schema_editor() as editor:
        editor.create_model(WebhookEvent)

    def empty() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE TABLE `{table}`")

    def measure() -> tuple[int, int, int]:
        """(data + index bytes, bytes in the text columns, rows)."""
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE TABLE `{table}`")
            cursor.fetchall()
            cursor.execute(
                "SELECT data_length + index_length FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = %s",
                [name, table],
            )
            (total,) = cursor.fetchone()
            text_bytes = (
                "COALESCE(SUM(OCTET_LENGTH(body) + OCTET_LENGTH(headers) "
                "+ COALESCE(OCTET_LENGTH(payload), 0) + OCTET_LENGTH(last_error)), 0)"
            )
            # The model's own table name: nothing from outside goes into the statement.
            cursor.execute(f"SELECT {text_bytes}, COUNT(*) FROM `{table}`")  # noqa: S608
            stored, rows = cursor.fetchone()
        return int(total), int(stored), int(rows)

    stranger = pkcs1_15.new(RSA.generate(2048))
    client = Client()

    def through_the_view(deliveries: list[tuple[bytes, str]]) -> None:
        for body, signature in deliveries:
            response = client.post(
                URL,
                body,
                content_type="application/json",
                headers={"x-pingplusplus-signature": signature},
            )
            assert response.status_code == 401, (response.status_code, response.content[:200])

    def stored_whole(deliveries: list[tuple[bytes, str]]) -> None:
        """What the inbox did before: one row per delivery, with its whole body."""
        now = timezone.now()
        rows = [
            WebhookEvent(
                channel="pingxx",
                signature_status=SignatureStatus.INVALID,
                status=InboxStatus.REJECTED,
                headers={
                    "content-type": "application/json",
                    "content-length": str(len(body)),
                    "x-pingplusplus-signature": signature,
                },
                body=body.decode(),
                last_error="webhook_signature_invalid: The webhook signature does not match "
                "its body.",
                processed_at=now,
            )
            for body, signature in deliveries
        ]
        WebhookEvent.objects.bulk_create(rows, batch_size=50)

    def signed(body: bytes) -> tuple[bytes, str]:
        import base64

        return body, base64.b64encode(stranger.sign(SHA256.new(body))).decode()

    replay = signed(forged_body("replayed"))
    scenarios = {
        "identical": [replay] * COUNT,
        "distinct": [signed(forged_body(f"forgery {i}")) for i in range(COUNT)],
    }

    empty()
    baseline, _, _ = measure()
    missed = False
    for label, deliveries in scenarios.items():
        empty()
        started = time.monotonic()
        stored_whole(deliveries)
        whole_size, whole_stored, whole_rows = measure()
        empty()
        through_the_view(deliveries)
        elapsed = time.monotonic() - started
        table_size, stored, rows = measure()
        growth, whole_growth = table_size - baseline, whole_size - baseline
        print(
            f"{label:<9} {COUNT:,} forged {BODY_BYTES // 1024} KiB deliveries: "
            f"table +{size(growth)}, stored {size(stored)} in {rows:,} row(s) | "
            f"stored whole: table +{size(whole_growth)}, stored {size(whole_stored)} in "
            f"{whole_rows:,} rows | ratio {growth / whole_growth:.3%} (table), "
            f"{stored / whole_stored:.3%} (stored) | target under 2 MB: "
            f"{'met' if growth < 2 * MB else 'MISSED'} | {elapsed:.1f} s",
            flush=True,
        )
        missed = missed or growth >= 2 * MB
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
