"""The webhook inbox is bounded: forged, malformed and oversized deliveries cost a few
KiB and one row per distinct body, never their whole size each time; old rows that
nothing needs are pruned by ``manage.py prune_webhook_events``."""

import contextlib
import hashlib
import io
import json
import threading
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from orders.models import OrderStatus
from payments.models import InboxStatus, SignatureStatus, WebhookEvent
from payments_project import config
from tests.factories import WebhookEventFactory
from tests.payments.test_pingxx_flow import URL, unpaid_order
from tests.threads import run_together

SIGNATURE = "x-pingplusplus-signature"
KIB = 1024


def padded(event: dict, size: int, *, note: str = "") -> dict:
    """The event padded (in its object's metadata) to ``size`` bytes of JSON."""
    event["data"]["object"]["metadata"] = {"note": note, "padding": ""}
    missing = size - len(json.dumps(event, ensure_ascii=False).encode())
    event["data"]["object"]["metadata"]["padding"] = "p" * missing
    return event


def post(client, body: bytes, signature: str | None = None, **extra):
    headers = {SIGNATURE: signature} if signature is not None else {}
    return client.post(URL, body, content_type="application/json", headers=headers, **extra)


def forged(pingxx_double, pingxx_keys, event: dict, *, note: str = ""):
    """The event as a 60 KB delivery signed with a key that is not Ping++'s:
    (body, signature)."""
    return pingxx_double.sign_event(padded(event, 60 * KIB, note=note), key=pingxx_keys.stranger)


@pytest.fixture
def forged_event(pingxx_channel, pingxx_double) -> dict:
    """A charge.succeeded event naming no charge of ours: forged, it needs no order."""
    return pingxx_double.event(
        "charge.succeeded", {"id": "ch_forged0000000000000000", "object": "charge", "paid": True}
    )


@pytest.fixture
def paid_charge(db, pingxx_channel, pingxx_double):
    order, attempt, _ = unpaid_order()
    pingxx_double.pay(attempt.charge_id)
    return order, attempt


def test_the_limit_defaults_to_256_kib():
    assert config.load({})["WEBHOOK_MAX_BODY_BYTES"] == 256 * KIB


@pytest.mark.django_db
def test_a_body_over_the_limit_is_answered_413_unread_and_no_body_is_stored(
    client, pingxx_channel, settings
):
    settings.WEBHOOK_MAX_BODY_BYTES = 4 * KIB
    # The request says 4 KiB + 1 but carries 2 bytes: reading it would fail the request.
    response = client.generic(
        "POST", URL, b"{}", content_type="application/json", CONTENT_LENGTH=str(4 * KIB + 1)
    )
    assert response.status_code == 413
    assert response.json()["code"] == "webhook_body_too_large"
    row = WebhookEvent.objects.get()
    assert (row.status, row.body, row.body_bytes) == (InboxStatus.REJECTED, "", 4 * KIB + 1)
    assert row.digest == "" and row.rejection_code == "webhook_body_too_large"

    # Every body over the limit counts on that row; one at the limit is read and checked.
    assert post(client, b" " * (8 * KIB)).status_code == 413
    assert WebhookEvent.objects.get().repeats == 2
    assert post(client, b" " * (4 * KIB)).status_code == 401
    assert WebhookEvent.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["json", "binary"])
def test_a_forged_60_kb_delivery_keeps_2_kib_of_its_body_its_digest_and_size(
    client, forged_event, pingxx_double, pingxx_keys, kind
):
    if kind == "json":
        body, signature = forged(pingxx_double, pingxx_keys, forged_event)
    else:  # every byte undecodable: replacing them must not make the kept text longer
        body = b"\xff" * (60 * KIB)
        signature = pingxx_double.sign(body, key=pingxx_keys.stranger)
    assert len(body) == 60 * KIB

    response = post(client, body, signature)

    assert response.status_code == 401
    row = WebhookEvent.objects.get()
    assert (row.status, row.signature_status) == (InboxStatus.REJECTED, SignatureStatus.INVALID)
    assert row.body_bytes == 60 * KIB
    assert row.digest == hashlib.sha256(body).hexdigest()
    assert 0 < len(row.body.encode()) <= 2 * KIB
    if kind == "json":
        assert row.body == body[: 2 * KIB].decode()
    assert row.headers[SIGNATURE] == signature
    assert (row.repeats, row.rejection_code) == (1, "webhook_signature_invalid")


@pytest.mark.django_db
def test_a_forgery_with_many_signature_headers_keeps_at_most_4_kib_of_them(
    client, forged_event, pingxx_double, pingxx_keys
):
    body, signature = forged(pingxx_double, pingxx_keys, forged_event)
    many = {f"x-signature-{i}": "s" * 1900 for i in range(50)}
    response = client.post(
        URL, body, content_type="application/json", headers={SIGNATURE: signature, **many}
    )
    assert response.status_code == 401
    headers = WebhookEvent.objects.get().headers
    assert sum(len(name) + len(value) for name, value in headers.items()) <= 4 * KIB
    assert headers[SIGNATURE] == signature and "content-type" in headers


@pytest.mark.django_db
def test_50_identical_forged_deliveries_count_on_one_row(
    client, forged_event, pingxx_double, pingxx_keys
):
    body, signature = forged(pingxx_double, pingxx_keys, forged_event)

    statuses = {post(client, body, signature).status_code for _ in range(50)}

    assert statuses == {401}
    row = WebhookEvent.objects.get()
    assert row.repeats == 50
    assert row.last_seen_at >= row.received_at
    assert row.body_bytes == len(body) and len(row.body.encode()) <= 2 * KIB


@pytest.mark.django_db
def test_different_forged_bodies_or_refusals_get_rows_of_their_own(
    client, forged_event, pingxx_double, pingxx_keys
):
    bodies = [forged(pingxx_double, pingxx_keys, forged_event, note=str(i)) for i in range(3)]
    for body, signature in bodies:
        assert post(client, body, signature).status_code == 401
    # The first body again without a signature: refused for another reason, its own row.
    assert post(client, bodies[0][0]).status_code == 401
    assert post(client, bodies[0][0]).status_code == 401

    rows = WebhookEvent.objects.order_by("pk")
    assert [(r.digest, r.signature_status, r.repeats) for r in rows] == [
        *((hashlib.sha256(b).hexdigest(), SignatureStatus.INVALID, 1) for b, _ in bodies),
        (hashlib.sha256(bodies[0][0]).hexdigest(), SignatureStatus.MISSING, 2),
    ]


@pytest.mark.django_db
def test_a_flood_of_different_forgeries_is_only_counted_past_the_hourly_budget(
    client, forged_event, pingxx_double, pingxx_keys, settings
):
    settings.WEBHOOK_REJECTED_ROWS_PER_HOUR = 5
    bodies = [forged(pingxx_double, pingxx_keys, forged_event, note=str(i)) for i in range(30)]
    for body, signature in bodies:
        assert post(client, body, signature).status_code == 401
    # A body already recorded still counts on its own row.
    assert post(client, *bodies[0]).status_code == 401

    detailed = WebhookEvent.objects.exclude(digest__startswith="overflow:")
    assert detailed.count() == 5
    assert detailed.order_by("pk").first().repeats == 2
    overflow = WebhookEvent.objects.get(digest__startswith="overflow:")
    assert overflow.repeats == 25 and overflow.body == "" and overflow.headers == {}
    assert "WEBHOOK_REJECTED_ROWS_PER_HOUR" in overflow.last_error
    assert WebhookEvent.objects.count() == 6


@pytest.mark.django_db
def test_a_genuine_delivery_keeps_its_whole_body_and_applies(client, paid_charge, pingxx_double):
    order, attempt = paid_charge
    # 100 KB: over the former 64 KiB limit, under WEBHOOK_MAX_BODY_BYTES.
    event = padded(pingxx_double.charge_succeeded_event(attempt.charge_id), 100 * KIB)
    body, signature = pingxx_double.sign_event(event)

    response = post(client, body, signature)

    assert response.status_code == 200, response.content
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    row = WebhookEvent.objects.get()
    assert (row.status, row.event_id) == (InboxStatus.APPLIED, event["id"])
    assert row.body.encode() == body and row.body_bytes == len(body)
    assert row.digest is None and row.repeats == 1


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_20_concurrent_identical_forgeries_count_on_one_row(
    forged_event, pingxx_double, pingxx_keys, monkeypatch
):
    body, signature = forged(pingxx_double, pingxx_keys, forged_event)
    # The worst interleaving, every time: each delivery found no row, and all of them
    # insert theirs at once.
    together = threading.Barrier(20, timeout=10)
    create = WebhookEvent.objects.create

    def create_together(**fields):
        with contextlib.suppress(threading.BrokenBarrierError):
            together.wait()
        return create(**fields)

    monkeypatch.setattr(WebhookEvent.objects, "create", create_together)

    results = run_together(lambda i: post(Client(), body, signature).status_code, 20)

    assert results == [401] * 20
    row = WebhookEvent.objects.get()
    assert (row.repeats, row.digest) == (20, hashlib.sha256(body).hexdigest())


# ---- manage.py prune_webhook_events ----


def inbox_row(status: str, *, days_ago: float, channel: str = "pingxx") -> WebhookEvent:
    row = WebhookEventFactory(status=status, channel=channel)
    received = timezone.now() - timedelta(days=days_ago)
    WebhookEvent.objects.filter(pk=row.pk).update(received_at=received)
    return row


@pytest.fixture
def inbox():
    """Each status, 40 days old and 10 days old, on pingxx; one old applied Stripe row."""
    rows = {}
    for status in InboxStatus.values:
        rows[(status, "old")] = inbox_row(status, days_ago=40)
        rows[(status, "new")] = inbox_row(status, days_ago=10)
    rows[("applied", "stripe")] = inbox_row(InboxStatus.APPLIED, days_ago=40, channel="stripe")
    return rows


def prune(*args: str) -> str:
    out = io.StringIO()
    call_command("prune_webhook_events", *args, stdout=out)
    return out.getvalue()


def table_rows(output: str) -> dict[tuple[str, str], int]:
    found = {}
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] in InboxStatus.values and cells[-1].isdigit():
            found[(cells[0], cells[1])] = int(cells[-1])
    return found


@pytest.mark.django_db
def test_prune_dry_run_counts_per_status_and_channel_and_deletes_nothing(inbox):
    output = prune("--older-than", "30")

    assert table_rows(output) == {
        ("applied", "pingxx"): 1,
        ("applied", "stripe"): 1,
        ("ignored", "pingxx"): 1,
        ("rejected", "pingxx"): 1,
    }
    assert "would delete" in output and "Dry run" in output
    assert "Kept: 2 received or failed" in output
    assert WebhookEvent.objects.count() == len(inbox)


@pytest.mark.django_db
@pytest.mark.parametrize("batch_size", ["1000", "1"])
def test_prune_delete_removes_only_old_applied_ignored_and_rejected_rows(inbox, batch_size):
    output = prune("--older-than", "30", "--delete", "--batch-size", batch_size)

    assert sum(table_rows(output).values()) == 4
    assert "deleted" in output and "Dry run" not in output
    gone = {("applied", "old"), ("ignored", "old"), ("rejected", "old"), ("applied", "stripe")}
    remaining = set(WebhookEvent.objects.values_list("pk", flat=True))
    assert remaining == {row.pk for key, row in inbox.items() if key not in gone}
    assert table_rows(prune("--older-than", "30", "--delete")) == {}


@pytest.mark.django_db
def test_prune_never_deletes_received_or_failed_rows_however_old():
    kept = [
        inbox_row(InboxStatus.RECEIVED, days_ago=900),
        inbox_row(InboxStatus.FAILED, days_ago=900),
    ]

    prune("--older-than", "1", "--delete")

    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {row.pk for row in kept}


@pytest.mark.django_db
@pytest.mark.parametrize("days", ["0", "-5"])
def test_prune_needs_at_least_one_day(days):
    inbox_row(InboxStatus.APPLIED, days_ago=40)
    with pytest.raises(CommandError, match="older-than"):
        prune("--older-than", days, "--delete")
    assert WebhookEvent.objects.count() == 1


def test_prune_needs_older_than():
    with pytest.raises(CommandError, match="older-than"):
        prune("--delete")
