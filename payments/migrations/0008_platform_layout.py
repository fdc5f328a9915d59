"""The platform's layout, on every database: what its own migrations added since Stripe.

The platform's schema today (see ``payments_project.adoption``) has, beyond what the
earlier migrations of this service make:

- ``order_stripe_orders`` in the platform's layout (plain indexes on the ids, ``''``
  for an id not known yet, raw objects and metadata as JSON text in ``TEXT`` columns,
  the platform's comments), which its creator billing keeps writing to;
- ``biz_domain``, ``bill_order_bid`` and ``creator_bid`` on the Ping++ and Stripe
  attempt tables, with their five indexes: rows of ``biz_domain = 'billing'`` belong to
  the billing subsystem and this service never reads or changes them;
- ``order_alipay_orders`` and ``order_wechatpay_orders``, the attempts of its native
  Alipay and WeChat Pay channels.

A database adopted at that version has all of it: nothing changes there but the index
this service adds to find pending Stripe attempts (built in place). Elsewhere the
Stripe table this service created in 0002 (empty on a database adopted before Stripe)
is brought to the platform's layout, the columns are added (instantly: each has a
database default) and the two tables are created with the platform's own DDL. Rolling
back reverses exactly that.
"""

from django.db import migrations, models
from django.db.models.functions import Length

import payments_project.db
from payments_project.adoption import CURRENT, ExceptOn, OnlyOn, adopted_version
from payments_project.migration_utils import LegacyDataConflict

NATIVE_DDL = {
    "order_alipay_orders": """CREATE TABLE order_alipay_orders (
  id BIGINT NOT NULL AUTO_INCREMENT COMMENT 'Primary key',
  alipay_order_bid VARCHAR(36) NOT NULL COMMENT 'Provider payment snapshot business identifier',
  biz_domain VARCHAR(16) NOT NULL COMMENT 'Business domain',
  bill_order_bid VARCHAR(36) NOT NULL COMMENT 'Billing order business identifier',
  creator_bid VARCHAR(36) NOT NULL COMMENT 'Creator business identifier',
  user_bid VARCHAR(36) NOT NULL COMMENT 'User business identifier',
  shifu_bid VARCHAR(36) NOT NULL COMMENT 'Shifu business identifier',
  order_bid VARCHAR(36) NOT NULL COMMENT 'Order business identifier',
  provider_attempt_id VARCHAR(64) NOT NULL COMMENT 'Provider-side merchant order identifier',
  transaction_id VARCHAR(128) NOT NULL COMMENT 'Provider transaction identifier',
  channel VARCHAR(36) NOT NULL COMMENT 'Payment channel',
  amount BIGINT NOT NULL COMMENT 'Payment amount',
  currency VARCHAR(36) NOT NULL COMMENT 'Currency',
  status SMALLINT NOT NULL COMMENT 'Status of the order: 0=pending, 1=paid, 2=refunded, 3=closed, 4=failed',
  raw_status VARCHAR(64) NOT NULL COMMENT 'Provider raw status or event type',
  raw_request TEXT NOT NULL COMMENT 'Raw provider request payload',
  raw_response TEXT NOT NULL COMMENT 'Raw provider response payload',
  raw_notification TEXT NOT NULL COMMENT 'Raw provider notification payload',
  metadata_json TEXT NOT NULL COMMENT 'Provider metadata JSON string',
  deleted SMALLINT NOT NULL COMMENT 'Deletion flag: 0=active, 1=deleted',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'Creation time',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'Update time',
  PRIMARY KEY (id),
  UNIQUE KEY ix_order_alipay_orders_alipay_order_bid (alipay_order_bid),
  KEY ix_order_alipay_orders_biz_domain (biz_domain),
  KEY ix_order_alipay_orders_bill_order_bid (bill_order_bid),
  KEY ix_order_alipay_orders_creator_bid (creator_bid),
  KEY ix_order_alipay_orders_user_bid (user_bid),
  KEY ix_order_alipay_orders_shifu_bid (shifu_bid),
  KEY ix_order_alipay_orders_order_bid (order_bid),
  KEY ix_order_alipay_orders_provider_attempt_id (provider_attempt_id),
  KEY ix_order_alipay_orders_transaction_id (transaction_id),
  KEY ix_order_alipay_orders_biz_domain_order_bid (biz_domain, order_bid),
  KEY ix_order_alipay_orders_biz_domain_bill_order_bid (biz_domain, bill_order_bid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='Order Alipay payment provider snapshots'""",
    "order_wechatpay_orders": """CREATE TABLE order_wechatpay_orders (
  id BIGINT NOT NULL AUTO_INCREMENT COMMENT 'Primary key',
  wechatpay_order_bid VARCHAR(36) NOT NULL COMMENT 'Provider payment snapshot business identifier',
  biz_domain VARCHAR(16) NOT NULL COMMENT 'Business domain',
  bill_order_bid VARCHAR(36) NOT NULL COMMENT 'Billing order business identifier',
  creator_bid VARCHAR(36) NOT NULL COMMENT 'Creator business identifier',
  user_bid VARCHAR(36) NOT NULL COMMENT 'User business identifier',
  shifu_bid VARCHAR(36) NOT NULL COMMENT 'Shifu business identifier',
  order_bid VARCHAR(36) NOT NULL COMMENT 'Order business identifier',
  provider_attempt_id VARCHAR(64) NOT NULL COMMENT 'Provider-side merchant order identifier',
  transaction_id VARCHAR(128) NOT NULL COMMENT 'Provider transaction identifier',
  channel VARCHAR(36) NOT NULL COMMENT 'Payment channel',
  amount BIGINT NOT NULL COMMENT 'Payment amount',
  currency VARCHAR(36) NOT NULL COMMENT 'Currency',
  status SMALLINT NOT NULL COMMENT 'Status of the order: 0=pending, 1=paid, 2=refunded, 3=closed, 4=failed',
  raw_status VARCHAR(64) NOT NULL COMMENT 'Provider raw status or event type',
  raw_request TEXT NOT NULL COMMENT 'Raw provider request payload',
  raw_response TEXT NOT NULL COMMENT 'Raw provider response payload',
  raw_notification TEXT NOT NULL COMMENT 'Raw provider notification payload',
  metadata_json TEXT NOT NULL COMMENT 'Provider metadata JSON string',
  deleted SMALLINT NOT NULL COMMENT 'Deletion flag: 0=active, 1=deleted',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'Creation time',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'Update time',
  PRIMARY KEY (id),
  UNIQUE KEY ix_order_wechatpay_orders_wechatpay_order_bid (wechatpay_order_bid),
  KEY ix_order_wechatpay_orders_biz_domain (biz_domain),
  KEY ix_order_wechatpay_orders_bill_order_bid (bill_order_bid),
  KEY ix_order_wechatpay_orders_creator_bid (creator_bid),
  KEY ix_order_wechatpay_orders_user_bid (user_bid),
  KEY ix_order_wechatpay_orders_shifu_bid (shifu_bid),
  KEY ix_order_wechatpay_orders_order_bid (order_bid),
  KEY ix_order_wechatpay_orders_provider_attempt_id (provider_attempt_id),
  KEY ix_order_wechatpay_orders_transaction_id (transaction_id),
  KEY ix_order_wechatpay_orders_biz_domain_order_bid (biz_domain, order_bid),
  KEY ix_order_wechatpay_orders_biz_domain_bill_order_bid (biz_domain, bill_order_bid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='Order WeChat Pay payment provider snapshots'""",
}
NOT_NULL_NOW = (
    "payment_intent_id",
    "checkout_session_id",
    "payment_intent_object",
    "checkout_session_object",
)
NATIVE_MODELS = {"order_alipay_orders": "AlipayOrder", "order_wechatpay_orders": "WechatpayOrder"}


def texts_fit(apps, schema_editor):
    """Values longer than the platform's VARCHAR(255) (this service allowed a longer
    failure message and receipt URL): shortened, the message with an ellipsis."""
    StripeOrder = apps.get_model("payments", "StripeOrder")
    attempts = StripeOrder._base_manager.using(schema_editor.connection.alias)
    for field in ("failure_message", "receipt_url"):
        long_ones = attempts.annotate(length=Length(field)).filter(length__gt=255)
        for attempt in long_ones.only("pk", field):
            value = getattr(attempt, field)
            setattr(
                attempt,
                field,
                value[:254] + "\u2026" if field == "failure_message" else value[:255],
            )
            attempt.save(update_fields=[field])


def attempt_ids_unique(apps, schema_editor):
    """The service finds a Stripe attempt by its business id: among learner orders'
    rows it must be unique (the platform's index is not). Checked before any change."""
    connection = schema_editor.connection
    if adopted_version(connection) != CURRENT:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stripe_order_bid FROM order_stripe_orders WHERE biz_domain = 'order' "
            "GROUP BY stripe_order_bid HAVING COUNT(*) > 1 LIMIT 5"
        )
        found = [row[0] for row in cursor.fetchall()]
    if found:
        raise LegacyDataConflict(
            "order_stripe_orders.stripe_order_bid must be unique among learner orders' rows "
            f"(biz_domain = 'order'), but some values are held by several rows (for "
            f"example {found!r}). Resolve these rows, then run migrate again; nothing was "
            "changed by this migration."
        )


def ids_back_to_null(apps, schema_editor):
    """Rolling back: the ids not known yet become NULL again before they are unique."""
    StripeOrder = apps.get_model("payments", "StripeOrder")
    attempts = StripeOrder._base_manager.using(schema_editor.connection.alias)
    attempts.filter(payment_intent_id="").update(payment_intent_id=None)
    attempts.filter(checkout_session_id="").update(checkout_session_id=None)


def comments_again(apps, schema_editor):
    """Django's MODIFY for a NOT NULL change drops the column's comment on MySQL: the
    four columns that went NOT NULL get theirs back (a change of metadata only)."""
    if schema_editor.connection.vendor != "mysql":
        return
    StripeOrder = apps.get_model("payments", "StripeOrder")
    for name in NOT_NULL_NOW:
        field = StripeOrder._meta.get_field(name)
        column_type = field.db_type(schema_editor.connection)
        comment = field.db_comment.replace("'", "''")
        schema_editor.execute(
            f"ALTER TABLE order_stripe_orders MODIFY {field.column} {column_type} NOT NULL "
            f"COMMENT '{comment}'",
            params=None,
        )


def native_tables_create(apps, schema_editor):
    if adopted_version(schema_editor.connection) == CURRENT:
        return
    for table, model in NATIVE_MODELS.items():
        if schema_editor.connection.vendor == "mysql":
            schema_editor.execute(NATIVE_DDL[table], params=None)
        else:
            schema_editor.create_model(apps.get_model("payments", model))


def native_tables_drop(apps, schema_editor):
    if adopted_version(schema_editor.connection) == CURRENT:
        return
    for model in NATIVE_MODELS.values():
        schema_editor.delete_model(apps.get_model("payments", model))


STRIPE_LAYOUT = [
    migrations.RunPython(texts_fit, migrations.RunPython.noop, elidable=False),
    migrations.AlterField(
        model_name="stripeorder",
        name="amount",
        field=models.BigIntegerField(db_comment="Payment amount in cents"),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="checkout_session_object",
        field=payments_project.db.LegacyJSONField(
            blank=True, db_comment="Stripe checkout session raw object", default=dict
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="currency",
        field=models.CharField(db_comment="Currency", max_length=36),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="failure_message",
        field=models.CharField(
            blank=True, db_comment="Failure message", default="", max_length=255
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="latest_charge_id",
        field=models.CharField(
            blank=True, db_comment="Latest Stripe charge identifier", default="", max_length=255
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="metadata",
        field=payments_project.db.LegacyJSONField(
            blank=True,
            db_column="metadata_json",
            db_comment="Stripe metadata JSON string",
            default=dict,
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="payment_intent_object",
        field=payments_project.db.LegacyJSONField(
            blank=True, db_comment="Stripe payment intent raw object", default=dict
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="payment_method",
        field=models.CharField(
            blank=True, db_comment="Stripe payment method identifier", default="", max_length=255
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="receipt_url",
        field=models.CharField(
            blank=True, db_comment="Stripe receipt URL", default="", max_length=255
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="status",
        field=models.SmallIntegerField(
            choices=[(0, "unpaid"), (1, "paid"), (2, "refunded"), (3, "closed"), (4, "failed")],
            db_comment="Status of the order: 0=pending, 1=paid, 2=refunded, 3=closed, 4=failed",
            default=0,
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="stripe_order_bid",
        field=models.CharField(
            db_comment="Stripe order business identifier",
            default=payments_project.db.new_bid,
            max_length=36,
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="payment_intent_id",
        field=models.CharField(
            blank=True,
            null=True,
            db_comment="Stripe payment intent identifier",
            default="",
            max_length=255,
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="checkout_session_id",
        field=models.CharField(
            blank=True,
            null=True,
            db_comment="Stripe checkout session identifier",
            default="",
            max_length=255,
        ),
    ),
    migrations.RunPython(migrations.RunPython.noop, ids_back_to_null, elidable=False),
    migrations.AlterField(
        model_name="stripeorder",
        name="checkout_session_id",
        field=models.CharField(
            blank=True, db_comment="Stripe checkout session identifier", default="", max_length=255
        ),
    ),
    migrations.AlterField(
        model_name="stripeorder",
        name="payment_intent_id",
        field=models.CharField(
            blank=True, db_comment="Stripe payment intent identifier", default="", max_length=255
        ),
    ),
    migrations.RunPython(comments_again, migrations.RunPython.noop, atomic=False, elidable=False),
    migrations.AddField(
        model_name="stripeorder",
        name="bill_order_bid",
        field=models.CharField(
            db_comment="Billing order business identifier", db_default="", default="", max_length=36
        ),
    ),
    migrations.AddField(
        model_name="stripeorder",
        name="biz_domain",
        field=models.CharField(
            db_comment="Business domain: order=legacy learner order, billing=creator billing",
            db_default="order",
            default="order",
            max_length=16,
        ),
    ),
    migrations.AddField(
        model_name="stripeorder",
        name="creator_bid",
        field=models.CharField(
            db_comment="Creator business identifier", db_default="", default="", max_length=36
        ),
    ),
    migrations.AddIndex(
        model_name="stripeorder",
        index=payments_project.db.LegacyIndex(
            fields=["stripe_order_bid"], name="ix_order_stripe_orders_stripe_order_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="stripeorder",
        index=payments_project.db.LegacyIndex(
            fields=["payment_intent_id"], name="ix_order_stripe_orders_payment_intent_id"
        ),
    ),
    migrations.AddIndex(
        model_name="stripeorder",
        index=payments_project.db.LegacyIndex(
            fields=["checkout_session_id"], name="ix_order_stripe_orders_checkout_session_id"
        ),
    ),
    migrations.AddIndex(
        model_name="stripeorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain"], name="ix_order_stripe_orders_biz_domain"
        ),
    ),
    migrations.AddIndex(
        model_name="stripeorder",
        index=payments_project.db.LegacyIndex(
            fields=["bill_order_bid"], name="ix_order_stripe_orders_bill_order_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="stripeorder",
        index=payments_project.db.LegacyIndex(
            fields=["creator_bid"], name="ix_order_stripe_orders_creator_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="stripeorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain", "order_bid"], name="ix_order_stripe_orders_biz_domain_order_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="stripeorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain", "bill_order_bid"],
            name="ix_order_stripe_orders_biz_domain_bill_order_bid",
        ),
    ),
]

PINGXX_DOMAIN = [
    migrations.AddField(
        model_name="pingxxorder",
        name="bill_order_bid",
        field=models.CharField(
            db_comment="Billing order business identifier", db_default="", default="", max_length=36
        ),
    ),
    migrations.AddField(
        model_name="pingxxorder",
        name="biz_domain",
        field=models.CharField(
            db_comment="Business domain: order=legacy learner order, billing=creator billing",
            db_default="order",
            default="order",
            max_length=16,
        ),
    ),
    migrations.AddField(
        model_name="pingxxorder",
        name="creator_bid",
        field=models.CharField(
            db_comment="Creator business identifier", db_default="", default="", max_length=36
        ),
    ),
    migrations.AddIndex(
        model_name="pingxxorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain"], name="ix_order_pingxx_orders_biz_domain"
        ),
    ),
    migrations.AddIndex(
        model_name="pingxxorder",
        index=payments_project.db.LegacyIndex(
            fields=["bill_order_bid"], name="ix_order_pingxx_orders_bill_order_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="pingxxorder",
        index=payments_project.db.LegacyIndex(
            fields=["creator_bid"], name="ix_order_pingxx_orders_creator_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="pingxxorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain", "order_bid"], name="ix_order_pingxx_orders_biz_domain_order_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="pingxxorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain", "bill_order_bid"],
            name="ix_order_pingxx_orders_biz_domain_bill_order_bid",
        ),
    ),
]

NATIVE_STATE = [
    migrations.CreateModel(
        name="AlipayOrder",
        fields=[
            (
                "id",
                models.BigAutoField(db_comment="Primary key", primary_key=True, serialize=False),
            ),
            (
                "biz_domain",
                models.CharField(db_comment="Business domain", default="order", max_length=16),
            ),
            (
                "bill_order_bid",
                models.CharField(
                    db_comment="Billing order business identifier", default="", max_length=36
                ),
            ),
            (
                "creator_bid",
                models.CharField(
                    db_comment="Creator business identifier", default="", max_length=36
                ),
            ),
            ("user_bid", models.CharField(db_comment="User business identifier", max_length=36)),
            (
                "product_bid",
                models.CharField(
                    db_column="shifu_bid", db_comment="Shifu business identifier", max_length=36
                ),
            ),
            ("order_bid", models.CharField(db_comment="Order business identifier", max_length=36)),
            (
                "provider_attempt_id",
                models.CharField(
                    db_comment="Provider-side merchant order identifier", max_length=64
                ),
            ),
            (
                "transaction_id",
                models.CharField(db_comment="Provider transaction identifier", max_length=128),
            ),
            ("channel", models.CharField(db_comment="Payment channel", max_length=36)),
            ("amount", models.BigIntegerField(db_comment="Payment amount")),
            ("currency", models.CharField(db_comment="Currency", max_length=36)),
            (
                "status",
                models.SmallIntegerField(
                    choices=[
                        (0, "unpaid"),
                        (1, "paid"),
                        (2, "refunded"),
                        (3, "closed"),
                        (4, "failed"),
                    ],
                    db_comment="Status of the order: 0=pending, 1=paid, 2=refunded, 3=closed, 4=failed",
                ),
            ),
            (
                "raw_status",
                models.CharField(db_comment="Provider raw status or event type", max_length=64),
            ),
            (
                "raw_request",
                payments_project.db.LegacyJSONField(db_comment="Raw provider request payload"),
            ),
            (
                "raw_response",
                payments_project.db.LegacyJSONField(db_comment="Raw provider response payload"),
            ),
            (
                "raw_notification",
                payments_project.db.LegacyJSONField(db_comment="Raw provider notification payload"),
            ),
            (
                "metadata",
                payments_project.db.LegacyJSONField(
                    db_column="metadata_json", db_comment="Provider metadata JSON string"
                ),
            ),
            (
                "deleted",
                models.SmallIntegerField(
                    choices=[(0, "active"), (1, "deleted")],
                    db_comment="Deletion flag: 0=active, 1=deleted",
                ),
            ),
            ("created_at", payments_project.db.LegacyDateTimeField(db_comment="Creation time")),
            ("updated_at", payments_project.db.LegacyDateTimeField(db_comment="Update time")),
            (
                "alipay_order_bid",
                models.CharField(
                    db_comment="Provider payment snapshot business identifier", max_length=36
                ),
            ),
        ],
        options={
            "db_table": "order_alipay_orders",
            "db_table_comment": "Order Alipay payment provider snapshots",
        },
    ),
    migrations.AddIndex(
        model_name="alipayorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain"], name="ix_order_alipay_orders_biz_domain"
        ),
    ),
    migrations.AddIndex(
        model_name="alipayorder",
        index=payments_project.db.LegacyIndex(
            fields=["bill_order_bid"], name="ix_order_alipay_orders_bill_order_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="alipayorder",
        index=payments_project.db.LegacyIndex(
            fields=["creator_bid"], name="ix_order_alipay_orders_creator_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="alipayorder",
        index=payments_project.db.LegacyIndex(
            fields=["user_bid"], name="ix_order_alipay_orders_user_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="alipayorder",
        index=payments_project.db.LegacyIndex(
            fields=["product_bid"], name="ix_order_alipay_orders_shifu_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="alipayorder",
        index=payments_project.db.LegacyIndex(
            fields=["order_bid"], name="ix_order_alipay_orders_order_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="alipayorder",
        index=payments_project.db.LegacyIndex(
            fields=["provider_attempt_id"], name="ix_order_alipay_orders_provider_attempt_id"
        ),
    ),
    migrations.AddIndex(
        model_name="alipayorder",
        index=payments_project.db.LegacyIndex(
            fields=["transaction_id"], name="ix_order_alipay_orders_transaction_id"
        ),
    ),
    migrations.AddIndex(
        model_name="alipayorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain", "order_bid"], name="ix_order_alipay_orders_biz_domain_order_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="alipayorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain", "bill_order_bid"],
            name="ix_order_alipay_orders_biz_domain_bill_order_bid",
        ),
    ),
    migrations.AddConstraint(
        model_name="alipayorder",
        constraint=models.UniqueConstraint(
            fields=("alipay_order_bid",), name="ix_order_alipay_orders_alipay_order_bid"
        ),
    ),
    migrations.CreateModel(
        name="WechatpayOrder",
        fields=[
            (
                "id",
                models.BigAutoField(db_comment="Primary key", primary_key=True, serialize=False),
            ),
            (
                "biz_domain",
                models.CharField(db_comment="Business domain", default="order", max_length=16),
            ),
            (
                "bill_order_bid",
                models.CharField(
                    db_comment="Billing order business identifier", default="", max_length=36
                ),
            ),
            (
                "creator_bid",
                models.CharField(
                    db_comment="Creator business identifier", default="", max_length=36
                ),
            ),
            ("user_bid", models.CharField(db_comment="User business identifier", max_length=36)),
            (
                "product_bid",
                models.CharField(
                    db_column="shifu_bid", db_comment="Shifu business identifier", max_length=36
                ),
            ),
            ("order_bid", models.CharField(db_comment="Order business identifier", max_length=36)),
            (
                "provider_attempt_id",
                models.CharField(
                    db_comment="Provider-side merchant order identifier", max_length=64
                ),
            ),
            (
                "transaction_id",
                models.CharField(db_comment="Provider transaction identifier", max_length=128),
            ),
            ("channel", models.CharField(db_comment="Payment channel", max_length=36)),
            ("amount", models.BigIntegerField(db_comment="Payment amount")),
            ("currency", models.CharField(db_comment="Currency", max_length=36)),
            (
                "status",
                models.SmallIntegerField(
                    choices=[
                        (0, "unpaid"),
                        (1, "paid"),
                        (2, "refunded"),
                        (3, "closed"),
                        (4, "failed"),
                    ],
                    db_comment="Status of the order: 0=pending, 1=paid, 2=refunded, 3=closed, 4=failed",
                ),
            ),
            (
                "raw_status",
                models.CharField(db_comment="Provider raw status or event type", max_length=64),
            ),
            (
                "raw_request",
                payments_project.db.LegacyJSONField(db_comment="Raw provider request payload"),
            ),
            (
                "raw_response",
                payments_project.db.LegacyJSONField(db_comment="Raw provider response payload"),
            ),
            (
                "raw_notification",
                payments_project.db.LegacyJSONField(db_comment="Raw provider notification payload"),
            ),
            (
                "metadata",
                payments_project.db.LegacyJSONField(
                    db_column="metadata_json", db_comment="Provider metadata JSON string"
                ),
            ),
            (
                "deleted",
                models.SmallIntegerField(
                    choices=[(0, "active"), (1, "deleted")],
                    db_comment="Deletion flag: 0=active, 1=deleted",
                ),
            ),
            ("created_at", payments_project.db.LegacyDateTimeField(db_comment="Creation time")),
            ("updated_at", payments_project.db.LegacyDateTimeField(db_comment="Update time")),
            (
                "wechatpay_order_bid",
                models.CharField(
                    db_comment="Provider payment snapshot business identifier", max_length=36
                ),
            ),
        ],
        options={
            "db_table": "order_wechatpay_orders",
            "db_table_comment": "Order WeChat Pay payment provider snapshots",
        },
    ),
    migrations.AddIndex(
        model_name="wechatpayorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain"], name="ix_order_wechatpay_orders_biz_domain"
        ),
    ),
    migrations.AddIndex(
        model_name="wechatpayorder",
        index=payments_project.db.LegacyIndex(
            fields=["bill_order_bid"], name="ix_order_wechatpay_orders_bill_order_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="wechatpayorder",
        index=payments_project.db.LegacyIndex(
            fields=["creator_bid"], name="ix_order_wechatpay_orders_creator_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="wechatpayorder",
        index=payments_project.db.LegacyIndex(
            fields=["user_bid"], name="ix_order_wechatpay_orders_user_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="wechatpayorder",
        index=payments_project.db.LegacyIndex(
            fields=["product_bid"], name="ix_order_wechatpay_orders_shifu_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="wechatpayorder",
        index=payments_project.db.LegacyIndex(
            fields=["order_bid"], name="ix_order_wechatpay_orders_order_bid"
        ),
    ),
    migrations.AddIndex(
        model_name="wechatpayorder",
        index=payments_project.db.LegacyIndex(
            fields=["provider_attempt_id"], name="ix_order_wechatpay_orders_provider_attempt_id"
        ),
    ),
    migrations.AddIndex(
        model_name="wechatpayorder",
        index=payments_project.db.LegacyIndex(
            fields=["transaction_id"], name="ix_order_wechatpay_orders_transaction_id"
        ),
    ),
    migrations.AddIndex(
        model_name="wechatpayorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain", "order_bid"],
            name="ix_order_wechatpay_orders_biz_domain_order_bid",
        ),
    ),
    migrations.AddIndex(
        model_name="wechatpayorder",
        index=payments_project.db.LegacyIndex(
            fields=["biz_domain", "bill_order_bid"],
            name="ix_order_wechatpay_orders_biz_domain_bill_order_bid",
        ),
    ),
    migrations.AddConstraint(
        model_name="wechatpayorder",
        constraint=models.UniqueConstraint(
            fields=("wechatpay_order_bid",), name="ix_order_wechatpay_orders_wechatpay_order_bid"
        ),
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0007_attempt_status_index"),
    ]

    operations = [
        migrations.RunPython(attempt_ids_unique, migrations.RunPython.noop, elidable=False),
        *(ExceptOn(operation) for operation in STRIPE_LAYOUT),
        OnlyOn(
            migrations.AddIndex(
                model_name="stripeorder",
                index=payments_project.db.LegacyIndex(
                    fields=["status", "created_at"], name="ix_order_stripe_orders_status_created_at"
                ),
            )
        ),
        *(ExceptOn(operation) for operation in PINGXX_DOMAIN),
        migrations.SeparateDatabaseAndState(state_operations=NATIVE_STATE),
        migrations.RunPython(
            native_tables_create, native_tables_drop, atomic=False, elidable=False
        ),
    ]
