"""Per-channel payment attempts and the webhook inbox.

``PingxxOrder`` adopts the legacy ``order_pingxx_orders`` table; ``StripeOrder`` is the
``order_stripe_orders`` table of the Stripe change. Amounts there are integers in minor
units. Attempts point at their order by ``order_bid``, as the legacy tables do.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from payments_project.db import (
    Deleted,
    LegacyDateTimeField,
    LegacyIndex,
    LegacyJSONField,
    new_bid,
    parse_legacy_object,
)


class AttemptStatus(models.IntegerChoices):
    PENDING = 0, "unpaid"
    PAID = 1, "paid"
    REFUNDED = 2, "refunded"
    CLOSED = 3, "closed"
    FAILED = 4, "failed"


ATTEMPT_STATUS_COMMENT = "Status of the order: 0=unpaid, 1=paid, 2=refunded, 3=closed, 4=failed"
PLATFORM_STATUS_COMMENT = "Status of the order: 0=pending, 1=paid, 2=refunded, 3=closed, 4=failed"

# The platform's attempt tables are shared with its creator billing: rows of another
# business domain are never read, changed or shown by this service.
ORDER_DOMAIN = "order"
DOMAIN_COMMENT = "Business domain: order=legacy learner order, billing=creator billing"


def _domain_indexes(table: str) -> list[models.Index]:
    """The platform's indexes of the three domain columns, by its names."""
    return [
        LegacyIndex(fields=["biz_domain"], name=f"ix_{table}_biz_domain"),
        LegacyIndex(fields=["bill_order_bid"], name=f"ix_{table}_bill_order_bid"),
        LegacyIndex(fields=["creator_bid"], name=f"ix_{table}_creator_bid"),
        LegacyIndex(fields=["biz_domain", "order_bid"], name=f"ix_{table}_biz_domain_order_bid"),
        LegacyIndex(
            fields=["biz_domain", "bill_order_bid"], name=f"ix_{table}_biz_domain_bill_order_bid"
        ),
    ]


def held_by_another_domain(
    model: type[models.Model], *, attempt_bid: str = "", payment_id: str = ""
) -> bool:
    """Whether a row of another business domain (the platform's creator billing) holds
    this attempt id or provider payment id: its events are that subsystem's, not lost
    ones of this service."""
    names = {field.name for field in model._meta.get_fields()}
    if "biz_domain" not in names:
        return False
    condition = models.Q()
    if attempt_bid:
        condition |= models.Q(**{model.attempt_bid_field: attempt_bid})
    if payment_id:
        for field in {model.payment_id_field, "checkout_session_id"} & names:
            condition |= models.Q(**{field: payment_id})
    if not condition:
        return False
    return model._base_manager.exclude(biz_domain=ORDER_DOMAIN).filter(condition).exists()


class OrderDomain(models.Manager):
    """The attempts of learner orders (``biz_domain = 'order'``): the default manager,
    so that the services, the admin and the API see nothing else."""

    def get_queryset(self):
        return super().get_queryset().filter(biz_domain=ORDER_DOMAIN)


def _domain_fields(*, db_default: bool = True) -> dict[str, models.Field]:
    extra = {"db_default": ORDER_DOMAIN} if db_default else {}
    blank = {"db_default": ""} if db_default else {}
    return {
        "biz_domain": models.CharField(
            max_length=16,
            default=ORDER_DOMAIN,
            db_comment=DOMAIN_COMMENT if db_default else "Business domain",
            **extra,
        ),
        "bill_order_bid": models.CharField(
            max_length=36, default="", db_comment="Billing order business identifier", **blank
        ),
        "creator_bid": models.CharField(
            max_length=36, default="", db_comment="Creator business identifier", **blank
        ),
    }


class PingxxOrder(models.Model):
    """One Ping++ charge attempt for an order."""

    # The columns holding an attempt's business id and the provider's payment id.
    attempt_bid_field = "transaction_no"
    payment_id_field = "charge_id"

    pingxx_order_bid = models.CharField(
        max_length=36, default=new_bid, db_comment="Pingxx order business identifier"
    )
    user_bid = models.CharField(max_length=36, db_comment="User business identifier")
    product_bid = models.CharField(
        max_length=36, db_column="shifu_bid", db_comment="Shifu business identifier"
    )
    order_bid = models.CharField(max_length=36, db_comment="Order business identifier")
    transaction_no = models.CharField(max_length=36, db_comment="Pingxx transaction number")
    app_id = models.CharField(max_length=36, db_comment="Pingxx app identifier")
    channel = models.CharField(max_length=36, db_comment="Payment channel")
    amount = models.BigIntegerField(db_comment="Payment amount")
    currency = models.CharField(max_length=36, default="CNY", db_comment="Currency")
    subject = models.CharField(max_length=255, db_comment="Payment subject")
    body = models.CharField(max_length=255, db_comment="Payment body")
    client_ip = models.CharField(max_length=255, db_comment="Client IP")
    extra = models.TextField(default="{}", db_comment="Extra information")
    status = models.SmallIntegerField(
        choices=AttemptStatus.choices,
        default=AttemptStatus.PENDING,
        db_comment=ATTEMPT_STATUS_COMMENT,
    )
    charge_id = models.CharField(max_length=255, default="", db_comment="Charge identifier")
    paid_at = LegacyDateTimeField(default=timezone.now, db_comment="Payment time")
    refunded_at = LegacyDateTimeField(default=timezone.now, db_comment="Refund time")
    closed_at = LegacyDateTimeField(default=timezone.now, db_comment="Close time")
    failed_at = LegacyDateTimeField(default=timezone.now, db_comment="Failed time")
    refund_id = models.CharField(max_length=255, default="", db_comment="Refund identifier")
    failure_code = models.CharField(max_length=255, default="", db_comment="Failure code")
    failure_msg = models.CharField(max_length=255, default="", db_comment="Failure message")
    charge_object = models.TextField(default="", db_comment="Pingxx raw charge object")
    deleted = models.SmallIntegerField(
        choices=Deleted.choices,
        default=Deleted.ACTIVE,
        db_comment="Deletion flag: 0=active, 1=deleted",
    )
    created_at = LegacyDateTimeField(auto_now_add=True, db_comment="Creation time")
    updated_at = LegacyDateTimeField(auto_now=True, db_comment="Update time")
    biz_domain, bill_order_bid, creator_bid = _domain_fields().values()

    objects = OrderDomain()

    class Meta:
        verbose_name = "Ping++ attempt"
        verbose_name_plural = "Ping++ attempts"
        db_table = "order_pingxx_orders"
        db_table_comment = "Order pingxx orders"
        indexes = [
            LegacyIndex(fields=["app_id"], name="ix_order_pingxx_orders_app_id"),
            LegacyIndex(fields=["charge_id"], name="ix_order_pingxx_orders_charge_id"),
            LegacyIndex(fields=["order_bid"], name="ix_order_pingxx_orders_order_bid"),
            LegacyIndex(
                fields=["pingxx_order_bid"], name="ix_order_pingxx_orders_pingxx_order_bid"
            ),
            LegacyIndex(fields=["refund_id"], name="ix_order_pingxx_orders_refund_id"),
            LegacyIndex(fields=["product_bid"], name="ix_order_pingxx_orders_shifu_bid"),
            LegacyIndex(fields=["user_bid"], name="ix_order_pingxx_orders_user_bid"),
            # Reconciliation's candidates: pending (and lately failed) attempts, least
            # recently checked first.
            LegacyIndex(
                fields=["status", "updated_at"], name="ix_order_pingxx_orders_status_updated_at"
            ),
            *_domain_indexes("order_pingxx_orders"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["transaction_no"], name="uq_order_pingxx_orders_transaction_no"
            ),
        ]

    def __str__(self) -> str:
        return self.pingxx_order_bid

    @property
    def attempt_bid(self) -> str:
        """The attempt's business id: its unique ``transaction_no`` (the Ping++
        order_no). This service writes the same value to ``pingxx_order_bid``; the
        legacy system left that column empty."""
        return self.transaction_no

    @property
    def provider_payment_id(self) -> str:
        return self.charge_id

    @property
    def currency_code(self) -> str:
        return self.currency.lower()

    @property
    def method_name(self) -> str:
        return self.channel

    @property
    def failure_text(self) -> str:
        return self.failure_msg or self.failure_code

    @classmethod
    def listing(cls) -> dict[str, Any]:
        """Expressions for an attempt's row in the list of an order's attempts across
        channels (``orders.selectors.order_attempts``): its business id, method and
        provider payment id."""
        return {"bid": F("transaction_no"), "how": F("channel"), "pid": F("charge_id")}

    @property
    def charge(self) -> Any:
        """The stored charge object, parsed (JSON or the legacy Python repr)."""
        return parse_legacy_object(self.charge_object)


class StripeOrder(models.Model):
    """One Stripe attempt for an order: a PaymentIntent, possibly behind a Checkout Session.

    The table is the platform's ``order_stripe_orders``, in its layout: its creator
    billing writes rows of its own there, so the ids are plain indexes (a Checkout
    Session's attempt has no PaymentIntent id, ``''``, until it is paid) and the raw
    objects are JSON text. Stripe makes its ids unique; an attempt's own business id is
    a new random one.
    """

    attempt_bid_field = "stripe_order_bid"
    payment_id_field = "payment_intent_id"

    stripe_order_bid = models.CharField(
        max_length=36, default=new_bid, db_comment="Stripe order business identifier"
    )
    user_bid = models.CharField(max_length=36, db_comment="User business identifier")
    product_bid = models.CharField(
        max_length=36, db_column="shifu_bid", db_comment="Shifu business identifier"
    )
    order_bid = models.CharField(max_length=36, db_comment="Order business identifier")
    payment_intent_id = models.CharField(
        max_length=255, blank=True, default="", db_comment="Stripe payment intent identifier"
    )
    checkout_session_id = models.CharField(
        max_length=255, blank=True, default="", db_comment="Stripe checkout session identifier"
    )
    latest_charge_id = models.CharField(
        max_length=255, blank=True, default="", db_comment="Latest Stripe charge identifier"
    )
    amount = models.BigIntegerField(db_comment="Payment amount in cents")
    currency = models.CharField(max_length=36, db_comment="Currency")
    status = models.SmallIntegerField(
        choices=AttemptStatus.choices,
        default=AttemptStatus.PENDING,
        db_comment=PLATFORM_STATUS_COMMENT,
    )
    receipt_url = models.CharField(
        max_length=255, blank=True, default="", db_comment="Stripe receipt URL"
    )
    payment_method = models.CharField(
        max_length=255, blank=True, default="", db_comment="Stripe payment method identifier"
    )
    failure_code = models.CharField(
        max_length=255, blank=True, default="", db_comment="Failure code"
    )
    failure_message = models.CharField(
        max_length=255, blank=True, default="", db_comment="Failure message"
    )
    metadata = LegacyJSONField(
        db_column="metadata_json",
        default=dict,
        blank=True,
        db_comment="Stripe metadata JSON string",
    )
    payment_intent_object = LegacyJSONField(
        default=dict, blank=True, db_comment="Stripe payment intent raw object"
    )
    checkout_session_object = LegacyJSONField(
        default=dict, blank=True, db_comment="Stripe checkout session raw object"
    )
    deleted = models.SmallIntegerField(
        choices=Deleted.choices,
        default=Deleted.ACTIVE,
        db_comment="Deletion flag: 0=active, 1=deleted",
    )
    created_at = LegacyDateTimeField(auto_now_add=True, db_comment="Creation time")
    updated_at = LegacyDateTimeField(auto_now=True, db_comment="Update time")
    biz_domain, bill_order_bid, creator_bid = _domain_fields().values()

    objects = OrderDomain()

    class Meta:
        verbose_name = "Stripe attempt"
        verbose_name_plural = "Stripe attempts"
        db_table = "order_stripe_orders"
        db_table_comment = "Order stripe orders"
        indexes = [
            LegacyIndex(
                fields=["stripe_order_bid"], name="ix_order_stripe_orders_stripe_order_bid"
            ),
            LegacyIndex(fields=["user_bid"], name="ix_order_stripe_orders_user_bid"),
            LegacyIndex(fields=["product_bid"], name="ix_order_stripe_orders_shifu_bid"),
            LegacyIndex(fields=["order_bid"], name="ix_order_stripe_orders_order_bid"),
            LegacyIndex(
                fields=["payment_intent_id"], name="ix_order_stripe_orders_payment_intent_id"
            ),
            LegacyIndex(
                fields=["checkout_session_id"], name="ix_order_stripe_orders_checkout_session_id"
            ),
            LegacyIndex(
                fields=["latest_charge_id"], name="ix_order_stripe_orders_latest_charge_id"
            ),
            *_domain_indexes("order_stripe_orders"),
            LegacyIndex(
                fields=["status", "created_at"], name="ix_order_stripe_orders_status_created_at"
            ),
        ]

    def __str__(self) -> str:
        return self.stripe_order_bid

    @property
    def attempt_bid(self) -> str:
        return self.stripe_order_bid

    @property
    def provider_payment_id(self) -> str:
        return self.payment_intent_id or self.checkout_session_id or ""

    @property
    def currency_code(self) -> str:
        return self.currency.lower()

    @property
    def method_name(self) -> str:
        return "checkout_session" if self.checkout_session_id else "payment_intent"

    @classmethod
    def listing(cls) -> dict[str, Any]:
        return {
            "bid": F("stripe_order_bid"),
            "how": Case(
                When(checkout_session_id="", then=Value("payment_intent")),
                default=Value("checkout_session"),
            ),
            "pid": Case(
                When(payment_intent_id="", then=F("checkout_session_id")),
                default=F("payment_intent_id"),
            ),
        }

    @property
    def failure_text(self) -> str:
        return self.failure_message or self.failure_code


class SandboxAttempt(models.Model):
    """One attempt through the sandbox channel, which takes no money (development only).

    The ``provider_*`` columns are the sandbox's own side: what a real provider would
    keep on its servers.
    """

    attempt_bid_field = "attempt_bid"
    payment_id_field = "payment_id"

    attempt_bid = models.CharField(
        max_length=36, unique=True, default=new_bid, db_comment="Attempt business identifier"
    )
    order_bid = models.CharField(max_length=36, db_comment="Order business identifier")
    user_bid = models.CharField(max_length=36, db_comment="User business identifier")
    method = models.CharField(max_length=36, default="confirm_page", db_comment="Method")
    amount = models.BigIntegerField(db_comment="Amount in minor units of the currency")
    currency = models.CharField(max_length=3, db_comment="ISO 4217 currency, lower case")
    status = models.SmallIntegerField(
        choices=AttemptStatus.choices,
        default=AttemptStatus.PENDING,
        db_comment=ATTEMPT_STATUS_COMMENT,
    )
    payment_id = models.CharField(
        max_length=64, null=True, blank=True, unique=True, db_comment="Sandbox payment id"
    )
    failure_code = models.CharField(
        max_length=255, blank=True, default="", db_comment="Failure code"
    )
    failure_message = models.TextField(blank=True, default="", db_comment="Failure message")
    raw = models.JSONField(null=True, blank=True, db_comment="Raw sandbox payment object")
    provider_state = models.CharField(
        max_length=16, default="pending", db_comment="The sandbox's own view of the payment"
    )
    provider_refunds = models.JSONField(
        default=list, blank=True, db_comment="The sandbox's own refunds of the payment"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")
    updated_at = models.DateTimeField(auto_now=True, db_comment="Update time")

    class Meta:
        db_table = "payment_sandbox_attempts"
        db_table_comment = "Sandbox payment attempts (development only)"
        indexes = [
            LegacyIndex(fields=["order_bid"], name="ix_payment_sandbox_attempts_order_bid"),
        ]

    def __str__(self) -> str:
        return self.attempt_bid

    @property
    def provider_payment_id(self) -> str:
        return self.payment_id or ""

    @property
    def currency_code(self) -> str:
        return self.currency

    @property
    def method_name(self) -> str:
        return self.method

    @classmethod
    def listing(cls) -> dict[str, Any]:
        return {
            "bid": F("attempt_bid"),
            "how": F("method"),
            "pid": Coalesce("payment_id", Value("")),
        }

    @property
    def failure_text(self) -> str:
        return self.failure_message or self.failure_code


class SignatureStatus(models.TextChoices):
    VALID = "valid"
    INVALID = "invalid"
    MISSING = "missing"


class InboxStatus(models.TextChoices):
    RECEIVED = "received"
    APPLIED = "applied"
    IGNORED = "ignored"
    FAILED = "failed"
    REJECTED = "rejected"


class WebhookEvent(models.Model):
    """One delivery received from a provider, stored before anything is applied.

    ``event_id`` is set only for deliveries whose signature verified, so a forged
    delivery can never take the place of the genuine event with the same id.

    A verified delivery keeps its whole body (it is applied again from it). A rejected
    one keeps only its size, the SHA-256 ``digest`` of its body and the body's first
    2 KiB; the same refusal (error code and signature verdict) of the same body on the
    same channel again only counts one more ``repeats`` on its row, so a flood of
    forgeries stays small. A body refused unread (too large) has an empty digest: those
    count on one row per channel.
    """

    channel = models.CharField(max_length=50, db_comment="Channel that sent it")
    event_id = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        db_comment="Provider event id; set once the signature verified",
    )
    event_type = models.CharField(
        max_length=100, blank=True, default="", db_comment="Provider event type"
    )
    signature_status = models.CharField(
        max_length=16, choices=SignatureStatus.choices, db_comment="Signature verdict"
    )
    status = models.CharField(
        max_length=16,
        choices=InboxStatus.choices,
        default=InboxStatus.RECEIVED,
        db_comment="received, applied, ignored, failed or rejected",
    )
    livemode = models.BooleanField(null=True, blank=True, db_comment="Provider live mode")
    order_bid = models.CharField(
        max_length=36, blank=True, default="", db_comment="Order the event concerns"
    )
    object_id = models.CharField(
        max_length=255, blank=True, default="", db_comment="Provider object id (charge, refund)"
    )
    headers = models.JSONField(default=dict, blank=True, db_comment="Request headers")
    body = models.TextField(db_comment="Raw request body")
    payload = models.JSONField(null=True, blank=True, db_comment="Parsed body")
    remote_addr = models.GenericIPAddressField(
        null=True, blank=True, db_comment="Address the delivery came from"
    )
    attempts = models.PositiveIntegerField(default=0, db_comment="Times it was applied")
    last_error = models.TextField(blank=True, default="", db_comment="Last error applying it")
    received_at = models.DateTimeField(auto_now_add=True, db_comment="Reception time")
    processed_at = models.DateTimeField(
        null=True, blank=True, db_comment="When it was last applied"
    )
    body_bytes = models.PositiveIntegerField(
        default=0,
        db_default=0,
        db_comment="Size of the delivery's body in bytes (a rejected one keeps its first 2 KiB)",
    )
    digest = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        db_comment="SHA-256 of a rejected delivery's body (empty: not read); NULL otherwise",
    )
    rejection_code = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        db_comment="Error code of a rejected delivery (its repeats count on one row)",
    )
    repeats = models.PositiveIntegerField(
        default=1, db_default=1, db_comment="Deliveries counted on this row (rejected repeats)"
    )
    last_seen_at = models.DateTimeField(
        null=True, blank=True, db_comment="When a rejected delivery was last received"
    )
    result = models.CharField(
        max_length=500, blank=True, default="", db_default="", db_comment="What applying it did"
    )
    integration_bid = models.CharField(
        max_length=36,
        blank=True,
        default="",
        db_default="",
        db_comment="Payment integration whose keys verified it; empty: the platform's",
    )

    class Meta:
        db_table = "payment_webhook_events"
        db_table_comment = "Provider webhook inbox"
        indexes = [
            LegacyIndex(fields=["order_bid"], name="ix_payment_webhook_events_order_bid"),
            LegacyIndex(fields=["object_id"], name="ix_payment_webhook_events_object_id"),
            LegacyIndex(fields=["status", "received_at"], name="ix_payment_webhook_events_status"),
            LegacyIndex(fields=["received_at"], name="ix_payment_webhook_events_received_at"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "event_id"], name="uq_payment_webhook_events_event_id"
            ),
            # One row per rejection: the digest is NULL on the other rows, and MySQL,
            # MariaDB and SQLite let a unique index hold many NULLs.
            models.UniqueConstraint(
                fields=["channel", "digest", "rejection_code", "signature_status"],
                name="uq_payment_webhook_events_digest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.event_id or self.pk}"


# The platform's own Alipay / WeChat Pay attempts (read only), in a module of their own.
from payments.merchants import PaymentIntegration  # noqa: E402, F401 (part of the app's models)
from payments.native import (  # noqa: E402, F401 (defined there, part of the app's models)
    NATIVE_ATTEMPTS,
    AlipayOrder,
    NativeAttempt,
    WechatpayOrder,
)
