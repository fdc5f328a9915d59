"""Adopting the platform's schema as it is today, and refusing one it does not know.

The fixture of ``../shared/legacy`` at its ``current`` version (five tables, creator
billing rows among the attempts, native Alipay / WeChat Pay attempts) is adopted by a
plain ``migrate``, compared value by value, rolled back to exactly the schema it
started from (through information_schema) and adopted again. The pre-Stripe version is
adopted the same way in test_migrations; here both end in the same schema.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.project.legacy_db import (
    CURRENT_TABLES,
    LEGACY_TABLES,
    ScratchDatabase,
    require_legacy_fixture,
    scratch_database,
)
from tests.project.test_migrations import (
    ROLL_BACK,
    check_migrate_our_apps,
    migrate_our_apps,
    our_tables,
)

pytestmark = pytest.mark.mariadb

ORDERS = 2000


def recorded_version(db: ScratchDatabase) -> str:
    return db.query("SELECT version FROM order_schema_adoption")[0][0]


def differences(db: ScratchDatabase, snapshot: dict) -> list[str]:
    return [d for table in snapshot for d in snapshot[table].differences(db)]


def without_positions(schema: dict) -> dict:
    """The schema with the columns' positions left out: columns added by this service
    come where each path adds them."""
    columns = sorted((table, name, *rest) for table, name, _position, *rest in schema["columns"])
    return {**schema, "columns": columns}


def schema_differences(one: dict, other: dict) -> list:
    """What one schema has that the other lacks, and the reverse, part by part."""
    one, other = without_positions(one), without_positions(other)
    found = []
    for part in one:
        mine, theirs = one[part], other[part]
        if isinstance(mine, dict):
            mine, theirs = set(mine.items()), set(theirs.items())
        else:
            mine, theirs = set(mine), set(theirs)
        found += [("only in the first", part, item) for item in sorted(mine - theirs)]
        found += [("only in the second", part, item) for item in sorted(theirs - mine)]
    return found


def load(db: ScratchDatabase, version: str, orders: int = ORDERS) -> None:
    db.load_legacy_schema(version)
    if orders:
        db.load_legacy_rows(orders=orders, version=version)


def test_todays_schema_is_adopted_rolled_back_exactly_and_adopted_again():
    require_legacy_fixture()
    with (
        scratch_database("current") as db,
        scratch_database("current_ddl") as pristine,
        scratch_database("pre_stripe") as older,
    ):
        load(db, "current")
        load(pristine, "current", orders=0)
        snapshot = db.snapshot(CURRENT_TABLES)
        # What the checks are about is in the rows: billing rows in three attempt
        # tables, orders of every channel, Stripe sessions not paid yet.
        for table in ("order_pingxx_orders", "order_stripe_orders", "order_alipay_orders"):
            assert db.query(f"SELECT COUNT(*) FROM {table} WHERE biz_domain = 'billing'")[0][0]
        channels = dict(db.query("SELECT payment_channel, COUNT(*) FROM order_orders GROUP BY 1"))
        assert set(channels) == {"pingxx", "stripe", "alipay", "wechatpay"}

        check_migrate_our_apps(db.url)  # plain migrate: no --fake-initial
        assert recorded_version(db) == "current"
        assert differences(db, snapshot) == []
        # The platform's Stripe orders were charged in dollars: they say so now.
        assert db.query(
            "SELECT DISTINCT o.currency FROM order_orders o WHERE o.payment_channel = 'stripe'"
        ) == [("usd",)]
        assert db.query(
            "SELECT COUNT(*) FROM order_orders WHERE payment_channel <> 'stripe' "
            "AND currency <> 'cny'"
        ) == [(0,)]
        assert our_tables() <= db.tables()
        tables = tuple(sorted(our_tables()))
        adopted = db.schema(tables)

        # The same service schema as a database adopted before Stripe.
        load(older, "pre_stripe", orders=50)
        check_migrate_our_apps(older.url)
        assert recorded_version(older) == "pre_stripe"
        assert schema_differences(older.schema(tables), adopted) == []

        db.manage_ok(*ROLL_BACK)
        assert db.schema(CURRENT_TABLES) == pristine.schema(CURRENT_TABLES)
        assert differences(db, snapshot) == []

        check_migrate_our_apps(db.url)
        assert differences(db, snapshot) == []
        assert db.schema(tables) == adopted


def test_a_schema_of_neither_version_is_refused_before_anything_changes():
    require_legacy_fixture()
    with scratch_database("unknown") as db:
        load(db, "current", orders=20)
        db.execute("ALTER TABLE order_stripe_orders DROP COLUMN receipt_url")
        db.execute("ALTER TABLE order_orders ADD COLUMN coupon_bid VARCHAR(36) NOT NULL")
        tables = db.tables()
        schema = db.schema(tuple(sorted(tables)))
        snapshot = db.snapshot(CURRENT_TABLES)

        result = migrate_our_apps(db.url)

        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert "unknown schema; nothing was changed" in result.stderr
        assert "order_stripe_orders.receipt_url: missing" in result.stderr
        assert "order_orders.coupon_bid: not expected" in result.stderr
        assert db.tables() == tables  # not even Django's own tables
        assert db.schema(tuple(sorted(tables))) == schema
        assert differences(db, snapshot) == []


def test_the_legacy_system_can_still_write_its_rows_after_adoption():
    """The platform's billing and its old order code keep inserting rows naming only
    their columns; they stay valid, and this service's columns take their defaults."""
    require_legacy_fixture()
    with scratch_database("writers") as db:
        load(db, "current", orders=30)
        check_migrate_our_apps(db.url)
        db.execute(
            "INSERT INTO order_stripe_orders (stripe_order_bid, user_bid, shifu_bid, "
            "order_bid, payment_intent_id, checkout_session_id, latest_charge_id, amount, "
            "currency, status, receipt_url, payment_method, failure_code, failure_message, "
            "metadata_json, payment_intent_object, checkout_session_object, deleted, "
            "created_at, updated_at, biz_domain, bill_order_bid, creator_bid) VALUES "
            "('bill1', '', '', '', '', 'cs_1', '', 990, 'usd', 0, '', '', '', '', '{}', "
            "'{}', '{}', 0, NOW(), NOW(), 'billing', 'bill1', 'c1'), "
            "('bill1', '', '', '', '', 'cs_2', '', 990, 'usd', 0, '', '', '', '', '{}', "
            "'{}', '{}', 0, NOW(), NOW(), 'billing', 'bill1', 'c1')"
        )
        db.execute(
            "INSERT INTO order_orders (order_bid, shifu_bid, user_bid, payable_price, "
            "paid_price, status, deleted, created_at, updated_at) VALUES "
            "('from-old-code', 's', 'u', 9.90, 9.90, 502, 0, NOW(), NOW())"
        )
        assert db.query(
            "SELECT payment_channel, currency, refunded_price, discount_price, creator_bid "
            "FROM order_orders WHERE order_bid = 'from-old-code'"
        ) == [("pingxx", "cny", Decimal("0.00"), Decimal("0.00"), "")]
        # The price rule holds for every writer (a trigger on MySQL, not a table copy).
        with pytest.raises(Exception, match="ck_order_orders_refunded_within_paid"):
            db.execute(
                "UPDATE order_orders SET refunded_price = paid_price + 1 "
                "WHERE order_bid = 'from-old-code'"
            )


def test_an_adopted_database_is_recorded_once_and_legacy_tables_are_never_dropped():
    require_legacy_fixture()
    with scratch_database("zero") as db:
        load(db, "pre_stripe", orders=20)
        check_migrate_our_apps(db.url)
        db.manage_ok("migrate", "orders", "zero")
        # Unapplying everything leaves the old system's tables and rows where they were.
        assert set(LEGACY_TABLES) <= db.tables()
        assert db.query("SELECT COUNT(*) FROM order_orders")[0][0] == 20
