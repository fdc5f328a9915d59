"""The attempts of the direct Alipay and WeChat Pay channels, in the platform's own
tables (``order_alipay_orders``, ``order_wechatpay_orders``, adopted or created by
payments 0008 in the platform's layout): the rows the platform wrote and this service's
alike, run by ``payments.providers.alipay`` and ``payments.providers.wechatpay``
through ``payments.providers.native_rows``. Imported into ``payments.models``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import models
from django.db.models import Case, F, When

from payments.models import (
    PLATFORM_STATUS_COMMENT,
    AttemptStatus,
    OrderDomain,
    _domain_fields,
    _domain_indexes,
)
from payments_project.db import Deleted, LegacyDateTimeField, LegacyIndex, LegacyJSONField

# What this service keeps in a native row's metadata, beside the platform's own fields.
CLIENT_DATA_KEY = "client_data"  # what the client needs to pay (QR URL, page, JSAPI)
INTEGRATION_KEY = "payment_integration_bid"  # the account it was made with ("": platform's)
EXPIRES_KEY = "expires_at"  # when it stops being payable (the order's expiry), ISO 8601


class NativeAttempt(models.Model):
    """An attempt of the direct Alipay or WeChat Pay channel (its merchant order number,
    ``out_trade_no``, is ``provider_attempt_id``)."""

    id = models.BigAutoField(primary_key=True, db_comment="Primary key")
    biz_domain, bill_order_bid, creator_bid = _domain_fields(db_default=False).values()
    user_bid = models.CharField(max_length=36, db_comment="User business identifier")
    product_bid = models.CharField(
        max_length=36, db_column="shifu_bid", db_comment="Shifu business identifier"
    )
    order_bid = models.CharField(max_length=36, db_comment="Order business identifier")
    provider_attempt_id = models.CharField(
        max_length=64, db_comment="Provider-side merchant order identifier"
    )
    transaction_id = models.CharField(max_length=128, db_comment="Provider transaction identifier")
    channel = models.CharField(max_length=36, db_comment="Payment channel")
    amount = models.BigIntegerField(db_comment="Payment amount")
    currency = models.CharField(max_length=36, db_comment="Currency")
    status = models.SmallIntegerField(
        choices=AttemptStatus.choices, db_comment=PLATFORM_STATUS_COMMENT
    )
    raw_status = models.CharField(max_length=64, db_comment="Provider raw status or event type")
    raw_request = LegacyJSONField(db_comment="Raw provider request payload")
    raw_response = LegacyJSONField(db_comment="Raw provider response payload")
    raw_notification = LegacyJSONField(db_comment="Raw provider notification payload")
    metadata = LegacyJSONField(
        db_column="metadata_json", db_comment="Provider metadata JSON string"
    )
    deleted = models.SmallIntegerField(
        choices=Deleted.choices, db_comment="Deletion flag: 0=active, 1=deleted"
    )
    created_at = LegacyDateTimeField(db_comment="Creation time")
    updated_at = LegacyDateTimeField(db_comment="Update time")

    # Each table names its business id column after its channel (``alipay_order_bid``).
    attempt_bid_field: str
    # The merchant order number sent to the provider (out_trade_no): known from the
    # start, it is what queries, refunds and closes name.
    payment_id_field = "provider_attempt_id"

    objects = OrderDomain()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.attempt_bid

    @property
    def attempt_bid(self) -> str:
        return getattr(self, self.attempt_bid_field)

    @property
    def provider_payment_id(self) -> str:
        return self.provider_attempt_id

    @classmethod
    def listing(cls) -> dict[str, Any]:
        return {
            "bid": F(cls.attempt_bid_field),
            "how": F("channel"),
            "pid": Case(
                When(transaction_id="", then=F("provider_attempt_id")),
                default=F("transaction_id"),
            ),
        }

    @property
    def metadata_map(self) -> dict[str, Any]:
        """The metadata as a dict of its own: a copy, {} when the column holds no object
        (the platform's older rows may hold other text)."""
        return dict(self.metadata) if isinstance(self.metadata, Mapping) else {}

    @property
    def integration_bid(self) -> str | None:
        """The merchant account this attempt was made with ("": the platform's), as this
        service records it in the metadata; None for a row written before (the
        platform's), whose order's ``payment_integration_bid`` says."""
        value = self.metadata_map.get(INTEGRATION_KEY)
        return value if isinstance(value, str) else None

    @property
    def currency_code(self) -> str:
        return self.currency.lower()

    @property
    def method_name(self) -> str:
        return self.channel

    @property
    def failure_text(self) -> str:
        return ""


def _native_indexes(table: str) -> list[models.Index]:
    """The platform's indexes of a native attempt table, in its order: the domain
    columns', then the ids', then the two composite ones."""
    domain = _domain_indexes(table)
    return [
        *domain[:3],
        LegacyIndex(fields=["user_bid"], name=f"ix_{table}_user_bid"),
        LegacyIndex(fields=["product_bid"], name=f"ix_{table}_shifu_bid"),
        LegacyIndex(fields=["order_bid"], name=f"ix_{table}_order_bid"),
        LegacyIndex(fields=["provider_attempt_id"], name=f"ix_{table}_provider_attempt_id"),
        LegacyIndex(fields=["transaction_id"], name=f"ix_{table}_transaction_id"),
        *domain[3:],
    ]


class AlipayOrder(NativeAttempt):
    """An attempt of the direct Alipay channel."""

    attempt_bid_field = "alipay_order_bid"

    alipay_order_bid = models.CharField(
        max_length=36, db_comment="Provider payment snapshot business identifier"
    )

    class Meta:
        verbose_name = "Alipay attempt"
        verbose_name_plural = "Alipay attempts"
        db_table = "order_alipay_orders"
        db_table_comment = "Order Alipay payment provider snapshots"
        indexes = _native_indexes("order_alipay_orders")
        constraints = [
            models.UniqueConstraint(
                fields=["alipay_order_bid"], name="ix_order_alipay_orders_alipay_order_bid"
            )
        ]


class WechatpayOrder(NativeAttempt):
    """An attempt of the direct WeChat Pay channel."""

    attempt_bid_field = "wechatpay_order_bid"

    wechatpay_order_bid = models.CharField(
        max_length=36, db_comment="Provider payment snapshot business identifier"
    )

    class Meta:
        verbose_name = "WeChat Pay attempt"
        verbose_name_plural = "WeChat Pay attempts"
        db_table = "order_wechatpay_orders"
        db_table_comment = "Order WeChat Pay payment provider snapshots"
        indexes = _native_indexes("order_wechatpay_orders")
        constraints = [
            models.UniqueConstraint(
                fields=["wechatpay_order_bid"], name="ix_order_wechatpay_orders_wechatpay_order_bid"
            )
        ]


# The direct channels' attempt models, by the order's payment_channel.
NATIVE_ATTEMPTS: dict[str, type[NativeAttempt]] = {
    "alipay": AlipayOrder,
    "wechatpay": WechatpayOrder,
}
