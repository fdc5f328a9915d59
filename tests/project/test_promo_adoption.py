"""Adopting the old system's promo tables: kept, rolled back to, honoured by the service.

A scratch MariaDB database gets the legacy order schema and rows (``../shared/legacy``)
and the old promo tables (``legacy_promo.mysql.sql``) with rows bound to those orders
(``legacy_promo_rows.py``). The migrations run through ``manage.py`` as an operator would
run them, and the database is read back with plain SQL, as in ``test_migrations``.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps

from orders.models import Order
from tests.project.legacy_db import (
    LEGACY_TABLES,
    ScratchDatabase,
    Snapshot,
    require_legacy_fixture,
    scratch_database,
)
from tests.project.legacy_promo_rows import ORDER_COLUMNS, LegacyPromos, legacy_promo_rows

PROMO_DDL = Path(__file__).with_name("legacy_promo.mysql.sql")
PROMO_TABLES = ("promo_coupon_usages", "promo_coupons", "promo_promos", "promo_redemptions")
# The documented adoption is a plain ``manage.py migrate``; as in test_migrations,
# only our apps are migrated (dj-stripe's migrations take a minute and none of ours need
# them). orders 0015 and 0016 depend on promos, so migrating orders migrates promos too.
OUR_APPS = ("orders", "payments", "promos")
ORDERS = 400
# The columns promos 0002 and orders 0015 add, last in their tables.
NEW_COLUMNS = {
    "promo_coupons": ["currency", "per_user_limit", "stacks_with_promotions", "release_on_refund"],
    "promo_coupon_usages": ["discount_amount", "currency"],
    "promo_promos": ["currency", "stackable"],
    "promo_redemptions": ["currency"],
    "order_orders": ["discount_price", "creator_bid", "payment_integration_bid"],
}


def migrations_on_disk(app: str) -> set[str]:
    # Read from disk: the suite's --no-migrations hides them from Django's loader.
    folder = Path(apps.get_app_config(app).path) / "migrations"
    return {path.stem for path in folder.glob("[0-9][0-9][0-9][0-9]_*.py")}


@dataclass
class Adopted:
    db: ScratchDatabase
    pristine: ScratchDatabase  # only the promo DDL: the legacy schema to roll back to
    promos: LegacyPromos
    snapshot: dict[str, Snapshot]  # before any migration


@pytest.fixture(scope="module")
def adopted_promos():
    """A legacy database (orders and promos) adopted with a plain ``migrate``."""
    with (
        scratch_database("legacy_promo") as db,
        scratch_database("legacy_promo_ddl") as pristine,
    ):
        db.load_legacy_schema()
        db.load_legacy_rows(orders=ORDERS)
        promos = legacy_promo_rows(
            db.query(f"SELECT {ORDER_COLUMNS} FROM order_orders ORDER BY id")
        )
        db.run_script(PROMO_DDL.read_text())
        db.run_script(promos.sql)
        pristine.run_script(PROMO_DDL.read_text())
        snapshot = db.snapshot((*LEGACY_TABLES, *PROMO_TABLES))
        assert {t: len(snapshot[t].rows) for t in PROMO_TABLES} == promos.counts

        for app in OUR_APPS:
            db.manage_ok("migrate", app)
        yield Adopted(db=db, pristine=pristine, promos=promos, snapshot=snapshot)


def comments_not_the_models(db: ScratchDatabase, models) -> list:
    found = []
    for model in models:
        table = model._meta.db_table
        if db.table_comment(table) != (model._meta.db_table_comment or ""):
            found.append((table, None, db.table_comment(table)))
        comments = db.column_comments(table)
        for field in model._meta.concrete_fields:
            if comments.get(field.column) != (field.db_comment or ""):
                found.append((table, field.column, comments.get(field.column)))
    return found


UNPAID = (501, 504)


def held_by_unpaid_orders(snapshot: dict[str, Snapshot]) -> list[int]:
    """The ids of the code uses, marked used (903), of orders never paid, as loaded."""
    orders = snapshot["order_orders"]
    status, bid = orders.columns.index("status"), orders.columns.index("order_bid")
    unpaid = {row[bid] for row in orders.rows.values() if row[status] in UNPAID}
    usages = snapshot["promo_coupon_usages"]
    u_status, u_order = usages.columns.index("status"), usages.columns.index("order_bid")
    u_deleted = usages.columns.index("deleted")
    return [
        pk
        for pk, row in usages.rows.items()
        if row[u_status] == 903 and row[u_order] in unpaid and row[u_deleted] == 0
    ]


def status_changes(adopted: Adopted) -> dict[int, tuple[int, int]]:
    usages = adopted.snapshot["promo_coupon_usages"]
    index = usages.columns.index("status")
    now = dict(adopted.db.query("SELECT id, status FROM promo_coupon_usages"))
    return {pk: (row[index], now[pk]) for pk, row in usages.rows.items() if row[index] != now[pk]}


def unpaid_discounts(snapshot: dict[str, Snapshot]) -> dict[str, Decimal]:
    """What 0016 records on the unpaid orders that hold a code or got a promotion: the
    list price less the paid price (the old system lowered it at once)."""
    orders = snapshot["order_orders"]
    col = {name: orders.columns.index(name) for name in orders.columns}
    usages = snapshot["promo_coupon_usages"]
    held = {
        usages.rows[pk][usages.columns.index("order_bid")] for pk in held_by_unpaid_orders(snapshot)
    }
    redemptions = snapshot["promo_redemptions"]
    r_col = {name: redemptions.columns.index(name) for name in redemptions.columns}
    held |= {
        row[r_col["order_bid"]]
        for row in redemptions.rows.values()
        if row[r_col["status"]] == 4101 and row[r_col["deleted"]] == 0
    }
    found = {}
    for row in orders.rows.values():
        bid, payable, paid = (
            row[col["order_bid"]],
            row[col["payable_price"]],
            row[col["paid_price"]],
        )
        if bid in held and row[col["status"]] in UNPAID and 0 <= paid < payable:
            found[bid] = payable - paid
    return found


def assert_adopted(adopted: Adopted) -> None:
    db, promos = adopted.db, adopted.promos
    # Every legacy value is kept. The snapshot holds the legacy columns only: the
    # backfilled currency and coupon discount_amount columns are new, so they are not
    # compared, and promo_redemptions.discount_amount (legacy) is compared like the rest.
    snapshot = adopted.snapshot
    ignored = {"promo_coupon_usages": ("status",), "promo_coupons": ("used_count",)}
    changed = [
        d
        for table, snap in snapshot.items()
        for d in snap.differences(db, ignore=ignored.get(table, ()))
    ]
    assert changed == []
    # promos 0003: each batch counts the uses its rows hold (the old counters ran ahead).
    assert (
        db.query(
            "SELECT c.id, c.used_count, (SELECT COUNT(*) FROM promo_coupon_usages u WHERE "
            "u.coupon_bid = c.coupon_bid AND u.status IN (903, 905) AND u.deleted = 0) AS held "
            "FROM promo_coupons c HAVING c.used_count <> held"
        )
        == []
    )
    # Except one: the codes the old system marked used (903) on orders never paid are
    # held (905) by them instead, to be given back when they time out (orders 0016).
    assert status_changes(adopted) == {pk: (903, 905) for pk in held_by_unpaid_orders(snapshot)}
    assert db.applied_migrations("promos") == migrations_on_disk("promos")
    assert db.applied_migrations("orders") == migrations_on_disk("orders")

    # The new columns come last, each with its comment; so does the code index.
    for table, columns in NEW_COLUMNS.items():
        assert db.columns(table)[-len(columns) :] == columns
    promo_models = list(apps.get_app_config("promos").get_models())
    assert comments_not_the_models(db, [*promo_models, Order]) == []
    indexes = db.schema(("promo_coupon_usages",))["indexes"]
    assert indexes[("promo_coupon_usages", "ix_promo_coupon_usages_code")] == (1, ("code",))
    # promos 0003: the old batches and promotions keep the old rules.
    assert db.query(
        "SELECT DISTINCT per_user_limit, stacks_with_promotions, release_on_refund "
        "FROM promo_coupons"
    ) == [(0, 1, 0)]
    assert db.query("SELECT DISTINCT stackable FROM promo_promos") == [(1,)]

    # promos 0003: fixed values are in CNY; percentages have no currency; uses and
    # redemptions bound to an order are in the order's CNY, unbound code rows in none.
    for table in ("promo_coupons", "promo_promos"):
        rows = db.query(f"SELECT DISTINCT discount_type, currency FROM {table} ORDER BY 1")
        assert rows == [(701, "cny"), (702, "")], table
    for table in ("promo_coupon_usages", "promo_redemptions"):
        rows = db.query(
            f"SELECT DISTINCT order_bid = '', currency FROM {table} ORDER BY 1",
        )
        expected = [(0, "cny"), (1, "")] if table == "promo_coupon_usages" else [(0, "cny")]
        assert rows == expected, table

    # orders 0016: paid and refunded orders with a used code or an applied promotion
    # record what was taken off the list price; every other order keeps 0.00.
    discounts = dict(
        db.query("SELECT order_bid, discount_price FROM order_orders WHERE discount_price <> 0")
    )
    unpaid = unpaid_discounts(adopted.snapshot)
    assert discounts == {**promos.discounts, **unpaid}
    assert (
        db.query(
            "SELECT id FROM order_orders WHERE discount_price <> 0 AND NOT "
            "(status IN (501, 502, 503, 504) AND discount_price = payable_price - paid_price)"
        )
        == []
    )
    amounts = dict(
        db.query(
            "SELECT coupon_usage_bid, discount_amount FROM promo_coupon_usages "
            "WHERE discount_amount <> 0"
        )
    )
    paid_amounts = {bid: a for bid, a in amounts.items() if bid in promos.coupon_amounts}
    assert paid_amounts == promos.coupon_amounts


@pytest.mark.mariadb
def test_legacy_promo_tables_are_adopted_rolled_back_and_adopted_again(request):
    require_legacy_fixture()
    adopted = request.getfixturevalue("adopted_promos")
    db, pristine, promos = adopted.db, adopted.pristine, adopted.promos
    # The fixture has what the checks are about: discounted paid orders with a code,
    # with a promotion, with both; orders that used a code but were never paid.
    assert len(promos.discounts) > 20
    assert len(promos.coupon_amounts) < len(promos.discounts)
    assert held_by_unpaid_orders(adopted.snapshot)
    assert_adopted(adopted)
    [(stacked,)] = db.query(
        "SELECT COUNT(*) FROM promo_coupon_usages u JOIN order_orders o "
        "ON o.order_bid = u.order_bid WHERE 0 < u.discount_amount "
        "AND u.discount_amount < o.discount_price"
    )
    assert stacked > 0  # a code and a promotion on one order: the code's share only
    tables = (*PROMO_TABLES, *LEGACY_TABLES)
    adopted_schema = db.schema(tables)

    # Back to the legacy schema: the orders migrations that depend on promos first.
    db.manage_ok("migrate", "orders", "0014_order_status_revoked")
    db.manage_ok("migrate", "promos", "0001_initial")
    assert db.schema(PROMO_TABLES) == pristine.schema(PROMO_TABLES)
    assert "discount_price" not in db.columns("order_orders")
    # The rows as they were, but the batches' recounted used_count (promos 0003).
    kept = [
        d
        for table, snap in adopted.snapshot.items()
        for d in snap.differences(db, ignore=("used_count",) if table == "promo_coupons" else ())
    ]
    assert kept == []
    assert db.applied_migrations("promos") == {"0001_initial"}
    assert not {"0015_discounts", "0016_legacy_discounts"} & db.applied_migrations("orders")

    # Applied again (promos 0001 stayed recorded): migrating
    # orders brings promos along as far as orders needs it.
    db.manage_ok("migrate", "orders")
    db.manage_ok("migrate", "promos")
    assert_adopted(adopted)
    assert db.schema(tables) == adopted_schema


# Run in ``manage.py shell`` against a copy of the adopted database: orders of legacy
# courses priced 299.00 CNY, with legacy codes, each by a new buyer. Prints one JSON line.
SERVICE_CHECK = """
import json
from decimal import Decimal

from orders.models import Product
from orders.services import order_create
from promos.errors import CouponError
from promos.models import CampaignRedemption, CouponBatch, CouponUsage

args = json.loads({args!r})
for shifu in args["products"]:
    Product.objects.create(
        product_bid=shifu, name="Legacy course " + shifu[:8], price=Decimal("299.00"),
        currency="cny",
    )
results = {{}}
for name, product, code in args["attempts"]:
    try:
        order, created = order_create(
            user_bid="buyer-" + name, product_bid=product, coupon_code=code
        )
    except CouponError as exc:
        results[name] = {{"error": exc.code}}
        continue
    uses = CouponUsage.objects.filter(order_bid=order.order_bid).values_list(
        "id", "code", "status", "discount_amount", "currency"
    )
    promotions = CampaignRedemption.objects.filter(order_bid=order.order_bid).values_list(
        "promo_name", "discount_amount", "status"
    )
    results[name] = {{
        "discount": str(order.discount_price),
        "due": str(order.due_price),
        "uses": [[i, c, s, str(a), cur] for i, c, s, a, cur in uses],
        "promotions": [[n, str(a), s] for n, a, s in promotions],
    }}
results["used_count"] = dict(
    CouponBatch.objects.filter(coupon_bid__in=args["counted"]).values_list(
        "coupon_bid", "used_count"
    )
)
print("RESULT " + json.dumps(results))
"""


def clone(source: ScratchDatabase, target: ScratchDatabase) -> None:
    """Copy every table of ``source`` into ``target`` (columns, indexes and rows; no
    foreign keys), so that a test can write to a copy of the adopted database."""
    for table in sorted(source.tables()):
        target.execute(f"CREATE TABLE `{table}` LIKE `{source.name}`.`{table}`")
        target.execute(f"INSERT INTO `{table}` SELECT * FROM `{source.name}`.`{table}`")


@pytest.mark.mariadb
def test_legacy_promo_rows_are_honoured_by_the_service(request):
    require_legacy_fixture()
    adopted = request.getfixturevalue("adopted_promos")
    promos = adopted.promos
    codes = promos.codes
    plain = promos.plain_shifu
    with scratch_database("legacy_promo_service") as db:
        clone(adopted.db, db)
        [(single_row, single_batch, single_used)] = db.query(
            "SELECT u.id, c.coupon_bid, c.used_count FROM promo_coupon_usages u "
            "JOIN promo_coupons c ON c.coupon_bid = u.coupon_bid WHERE u.code = %s",
            (codes["single_free"],),
        )
        [(shared_batch, shared_used)] = db.query(
            "SELECT coupon_bid, used_count FROM promo_coupons WHERE code = %s",
            (codes["shared_percent"],),
        )
        [(last_use,)] = db.query("SELECT MAX(id) FROM promo_coupon_usages")
        args = {
            "products": [plain, promos.campaign_shifu, promos.operator_shifu],
            "attempts": [
                ("shared", plain, codes["shared_percent"]),
                ("single", plain, codes["single_free"]),
                ("single_used", plain, codes["single_used"]),
                ("fixed", plain, codes["course_fixed"]),
                ("other_course", plain, codes["other_course"]),
                ("expired", plain, "NEWYEAR24"),
                ("deleted", plain, "TEST01"),
                ("campaign", promos.campaign_shifu, ""),
                ("operator_campaign", promos.operator_shifu, ""),
            ],
            "counted": [shared_batch, single_batch],
        }
        code = textwrap.dedent(SERVICE_CHECK).format(args=json.dumps(args))
        output = db.manage_ok("shell", "-c", code).stdout
    [line] = [line for line in output.splitlines() if line.startswith("RESULT ")]
    results = json.loads(line.removeprefix("RESULT "))

    # A legacy operator's shared 15 % code (status 0, no author): 44.85 off 299.00, a new
    # use reserved (905) for the order, counted against its batch.
    assert results["shared"]["discount"] == "44.85"
    assert results["shared"]["due"] == "254.15"
    [[use_id, use_code, status, amount, currency]] = results["shared"]["uses"]
    assert use_id > last_use
    assert [use_code, status, amount, currency] == [codes["shared_percent"], 905, "44.85", "cny"]
    # A legacy single-use 20 % code nobody held: its own row is taken.
    assert results["single"]["discount"] == "59.80"
    assert results["single"]["uses"] == [[single_row, codes["single_free"], 905, "59.80", "cny"]]
    assert results["used_count"] == {shared_batch: shared_used + 1, single_batch: single_used + 1}
    # A legacy fixed code of this course: its CNY value (promos 0003) off a CNY order.
    fixed = promos.course_fixed_value
    assert results["fixed"]["discount"] == str(fixed)
    assert results["fixed"]["due"] == str(Decimal("299.00") - fixed)
    # Codes the legacy rows refuse.
    assert results["single_used"] == {"error": "coupon_used"}
    assert results["other_course"] == {"error": "coupon_not_applicable"}
    assert results["expired"] == {"error": "coupon_expired"}
    assert results["deleted"] == {"error": "coupon_not_found"}
    # Legacy automatic campaigns in force: an active one, and a legacy operator's with
    # status 0 and no author; the plain course's paused, deleted and manual ones do not
    # apply (its orders above got the code alone).
    assert results["campaign"]["discount"] == "29.90"
    assert results["campaign"]["promotions"] == [["老学员专享 9折", "29.90", 4101]]
    assert results["operator_campaign"]["discount"] == "14.95"
    assert results["operator_campaign"]["promotions"] == [["开学季 95折", "14.95", 4101]]
    assert results["shared"]["promotions"] == []
