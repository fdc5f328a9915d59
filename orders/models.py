"""Products, orders and refunds: the business of selling a course.

``Order`` adopts the legacy ``order_orders`` table with its column names, types,
comments and status codes; prices there are DECIMAL(10,2) in major units.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from payments_project.db import Deleted, LegacyDateTimeField, LegacyIndex, new_bid
from payments_project.money import (
    InvalidInput,
    exponent,
    format_money,
    normalize_currency,
    to_minor,
)

# The legacy price columns are DECIMAL(10,2): currencies with a finer minor unit
# (KWD, BHD...) cannot be priced exactly, so they are refused rather than rounded.
PRICE_DECIMAL_PLACES = 2


class OrderStatus(models.IntegerChoices):
    INIT = 501, "init"
    PAID = 502, "paid"
    REFUNDED = 503, "refunded"
    UNPAID = 504, "unpaid"
    TIMEOUT = 505, "timeout"
    CANCELLED = 506, "cancelled"
    # The entitlement ended by the platform (partner API) with no money moved: no longer
    # 502, which the platform's learning service reads as owned. Its money can still be
    # refunded.
    REVOKED = 507, "revoked"


# The API's order status: the labels (its schema names the set OrderStatusEnum).
ORDER_STATUS_LABELS = [status.label for status in OrderStatus]


class OrderQuerySet(models.QuerySet):
    def live(self) -> OrderQuerySet:
        """Orders that were not soft-deleted by the legacy system."""
        return self.filter(deleted=Deleted.ACTIVE)

    def siblings_of(self, order: Order, *statuses: int) -> OrderQuerySet:
        """The user's other live orders of ``order``'s product, in ``statuses``."""
        return (
            self.live()
            .filter(user_bid=order.user_bid, product_bid=order.product_bid, status__in=statuses)
            .exclude(pk=order.pk)
        )


class Order(models.Model):
    order_bid = models.CharField(
        max_length=36, default=new_bid, db_comment="Order business identifier"
    )
    product_bid = models.CharField(
        max_length=36, db_column="shifu_bid", db_comment="Shifu business identifier"
    )
    user_bid = models.CharField(max_length=36, db_comment="User business identifier")
    payable_price = models.DecimalField(
        max_digits=10, decimal_places=2, db_comment="Shifu original price"
    )
    paid_price = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0.00"), db_comment="Paid price"
    )
    status = models.SmallIntegerField(
        choices=OrderStatus.choices,
        default=OrderStatus.INIT,
        db_comment=(
            "Status of the order: 501=init, 502=paid, 503=refunded, 504=unpaid, "
            "505=timeout, 506=cancelled, 507=revoked"
        ),
    )
    deleted = models.SmallIntegerField(
        choices=Deleted.choices,
        default=Deleted.ACTIVE,
        db_comment="Deletion flag: 0=active, 1=deleted",
    )
    created_at = LegacyDateTimeField(auto_now_add=True, db_comment="Creation time")
    updated_at = LegacyDateTimeField(auto_now=True, db_comment="Update time")
    payment_channel = models.CharField(
        max_length=50,
        db_default="pingxx",
        default="pingxx",
        db_comment="Payment channel: pingxx, stripe, sandbox, grant",
    )
    currency = models.CharField(
        max_length=3,
        db_default="cny",
        default="cny",
        db_comment="ISO 4217 currency of the prices, lower case",
    )
    refunded_price = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        db_default=Decimal("0.00"),
        default=Decimal("0.00"),
        db_comment="Refunded total, in the order currency",
    )
    discount_price = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        db_default=Decimal("0.00"),
        default=Decimal("0.00"),
        db_comment="Promotions and coupon taken off payable_price, in the order currency",
    )
    # The platform's columns: the course owner, and the merchant integration its
    # payment went through (empty: the platform's own).
    creator_bid = models.CharField(
        max_length=36, default="", db_default="", blank=True, db_comment="Course owner identifier"
    )
    payment_integration_bid = models.CharField(
        max_length=36,
        default="",
        db_default="",
        blank=True,
        db_comment="Snapshotted creator integration",
    )

    objects = OrderQuerySet.as_manager()

    class Meta:
        db_table = "order_orders"
        db_table_comment = "Order orders"
        indexes = [
            LegacyIndex(fields=["product_bid"], name="ix_order_orders_shifu_bid"),
            LegacyIndex(fields=["user_bid"], name="ix_order_orders_user_bid"),
            LegacyIndex(fields=["payment_channel"], name="ix_order_orders_payment_channel"),
            LegacyIndex(fields=["created_at"], name="ix_order_orders_created_at"),
            LegacyIndex(fields=["status", "created_at"], name="ix_order_orders_status_created_at"),
            # The admin's list filtered by status, newest first, and its capped count.
            LegacyIndex(fields=["status", "id"], name="ix_order_orders_status_id"),
            LegacyIndex(fields=["creator_bid"], name="ix_order_orders_creator_bid"),
            # The dashboard's orders created, and paid elsewhere, per day and currency:
            # read from the index alone (a 90-day range of a million orders in 0.3 s
            # instead of a scan of the table).
            LegacyIndex(
                fields=["created_at", "currency", "status", "payment_channel", "paid_price"],
                name="ix_order_orders_dashboard",
            ),
            LegacyIndex(
                fields=["payment_integration_bid"], name="ix_order_orders_payment_integration_bid"
            ),
            # The support console's search by amount paid (added online: 0018).
            LegacyIndex(fields=["paid_price"], name="ix_order_orders_paid_price"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["order_bid"], name="uq_order_orders_order_bid"),
            models.CheckConstraint(
                condition=Q(payable_price__gte=0) & Q(paid_price__gte=0),
                name="ck_order_orders_prices_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(refunded_price__gte=0) & Q(refunded_price__lte=F("paid_price")),
                name="ck_order_orders_refunded_within_paid",
            ),
        ]

    def __str__(self) -> str:
        return self.order_bid

    @property
    def due_price(self) -> Decimal:
        """What the buyer pays: the list price (``payable_price``, as the old system
        named it) less the discounts."""
        return self.payable_price - self.discount_price

    @property
    def refundable_price(self) -> Decimal:
        """Paid less refunded, ignoring refunds pending or awaiting approval. Not what can
        be refunded now: that is ``orders.selectors.order_refundable_amount``, which the
        services, the admin and the API use; this is kept for the tests that read it."""
        return self.paid_price - self.refunded_price

    @property
    def status_name(self) -> str:
        return OrderStatus(self.status).label


class Product(models.Model):
    """A course on sale. Its ``product_bid`` is the ``shifu_bid`` of its orders."""

    product_bid = models.CharField(
        max_length=36, unique=True, default=new_bid, db_comment="Product business identifier"
    )
    name = models.CharField(max_length=255, db_comment="Name shown to buyers")
    description = models.TextField(blank=True, default="", db_comment="Description")
    price = models.DecimalField(
        max_digits=10, decimal_places=2, db_comment="Price in major units of the currency"
    )
    currency = models.CharField(
        max_length=3, default="cny", db_comment="ISO 4217 currency, lower case"
    )
    active = models.BooleanField(default=True, db_comment="On sale")
    # The platform's course author: copied onto each new order (Order.creator_bid), and
    # what scopes the support console for staff linked to creators (StaffCreator).
    creator_bid = models.CharField(
        max_length=36, blank=True, default="", db_comment="Course owner (creator) identifier"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")
    updated_at = models.DateTimeField(auto_now=True, db_comment="Update time")

    class Meta:
        db_table = "order_products"
        db_table_comment = "Courses on sale"
        indexes = [
            LegacyIndex(fields=["active", "name"], name="ix_order_products_active_name"),
            LegacyIndex(fields=["creator_bid"], name="ix_order_products_creator_bid"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(price__gte=0), name="ck_order_products_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            self.currency = normalize_currency(self.currency)
            if self.price is not None:
                to_minor(self.price, self.currency)
        except InvalidInput as exc:
            field = "currency" if exc.code == "unsupported_currency" else "price"
            raise ValidationError({field: exc.message}) from exc
        if exponent(self.currency) > PRICE_DECIMAL_PLACES:
            raise ValidationError(
                {
                    "currency": f"{self.currency.upper()} has {exponent(self.currency)} "
                    f"decimal places; prices are kept with {PRICE_DECIMAL_PLACES}."
                }
            )


class RefundStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Refund(models.Model):
    """One refund of an order, in part or in full, through the channel that was paid."""

    refund_bid = models.CharField(
        max_length=36, unique=True, default=new_bid, db_comment="Refund business identifier"
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="refunds", db_comment="Refunded order"
    )
    payment_channel = models.CharField(max_length=50, db_comment="Channel that refunds")
    attempt_bid = models.CharField(
        max_length=36, blank=True, default="", db_comment="Channel attempt that is refunded"
    )
    amount = models.DecimalField(
        max_digits=10, decimal_places=2, db_comment="Refund amount in major units"
    )
    currency = models.CharField(max_length=3, db_comment="ISO 4217 currency, lower case")
    status = models.CharField(
        max_length=16,
        choices=RefundStatus.choices,
        default=RefundStatus.PENDING,
        db_comment="pending, succeeded or failed",
    )
    reason = models.CharField(max_length=255, db_comment="Why the refund was made")
    provider_refund_id = models.CharField(
        max_length=255, null=True, blank=True, db_comment="Refund id at the provider"
    )
    failure_code = models.CharField(
        max_length=255, blank=True, default="", db_comment="Failure code"
    )
    failure_message = models.TextField(blank=True, default="", db_comment="Failure message")
    raw = models.JSONField(null=True, blank=True, db_comment="Raw provider refund object")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_comment="Staff user who asked for the refund",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")
    updated_at = models.DateTimeField(auto_now=True, db_comment="Update time")
    settled_at = models.DateTimeField(
        null=True, blank=True, db_comment="When it succeeded or failed"
    )
    submitted_at = models.DateTimeField(
        null=True, blank=True, db_comment="When it was last sent to the provider"
    )
    duplicate_payment = models.BooleanField(
        default=False,
        db_default=False,
        db_comment="Refunds a second payment of an order already paid: not in its totals",
    )
    retried_at = models.DateTimeField(
        null=True, blank=True, db_comment="When a failed refund was asked for again"
    )

    class Meta:
        db_table = "order_refunds"
        db_table_comment = "Refunds of orders"
        indexes = [
            LegacyIndex(fields=["status", "created_at"], name="ix_order_refunds_status_created_at"),
            # The dashboard's refunds per day they succeeded.
            LegacyIndex(fields=["status", "settled_at"], name="ix_order_refunds_status_settled_at"),
            # The support console's search by amount and by provider refund id.
            LegacyIndex(fields=["amount"], name="ix_order_refunds_amount"),
            LegacyIndex(fields=["provider_refund_id"], name="ix_order_refunds_provider_refund_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="ck_order_refunds_amount_positive"
            ),
            models.UniqueConstraint(
                fields=["payment_channel", "provider_refund_id"],
                name="uq_order_refunds_provider_refund_id",
            ),
        ]

    def __str__(self) -> str:
        return self.refund_bid


class OrderEventKind(models.TextChoices):
    STATUS = "status", "status change"
    ATTEMPT = "attempt", "payment attempt"
    PAYMENT = "payment", "provider payment event"
    REFUND = "refund", "refund"
    NOTE = "note", "note"


class OrderEvent(models.Model):
    """One line of an order's history: who or which provider event did what, when."""

    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="events", db_comment="Order"
    )
    kind = models.CharField(
        max_length=16, choices=OrderEventKind.choices, db_comment="What happened"
    )
    from_status = models.SmallIntegerField(
        null=True, blank=True, choices=OrderStatus.choices, db_comment="Status before"
    )
    to_status = models.SmallIntegerField(
        null=True, blank=True, choices=OrderStatus.choices, db_comment="Status after"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_comment="Staff user or customer who acted, if any",
    )
    source = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_comment="What acted: api, admin, system, or channel:event id",
    )
    message = models.CharField(max_length=500, blank=True, default="", db_comment="Summary")
    data = models.JSONField(default=dict, blank=True, db_comment="Details")
    created_at = models.DateTimeField(auto_now_add=True, db_comment="When")

    class Meta:
        db_table = "order_events"
        db_table_comment = "Audit trail of orders"
        ordering = ["created_at", "id"]
        indexes = [
            LegacyIndex(fields=["order", "created_at"], name="ix_order_events_order_created_at"),
            # The dashboard's payments per day: a range of one status's lines, covering
            # what it reads of them (the order is then joined by primary key).
            LegacyIndex(
                fields=["to_status", "created_at", "from_status", "order"],
                name="ix_order_events_to_status_created_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.kind} {self.message}"


class ApprovalStatus(models.TextChoices):
    AWAITING = "awaiting", "awaiting approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    FAILED = "failed", "approved, refund refused"


class RefundApproval(models.Model):
    """A staff refund above the approval threshold, held until a second staff member
    approves it (then it is requested as any refund) or rejects it. No provider call
    happens before approval; while awaiting, its amount counts against what the
    support console lets anyone else refund."""

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="refund_approvals", db_comment="Order"
    )
    amount = models.DecimalField(
        max_digits=10, decimal_places=2, db_comment="Requested amount in major units"
    )
    currency = models.CharField(max_length=3, db_comment="ISO 4217 currency, lower case")
    reason = models.CharField(max_length=255, db_comment="Why the refund is asked for")
    status = models.CharField(
        max_length=16,
        choices=ApprovalStatus.choices,
        default=ApprovalStatus.AWAITING,
        db_comment="awaiting, approved, rejected or failed",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        db_comment="Staff user who asked for the refund",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_comment="Staff user who approved or rejected it",
    )
    decided_at = models.DateTimeField(null=True, blank=True, db_comment="When it was decided")
    note = models.TextField(blank=True, default="", db_comment="Decision note or error")
    refund = models.OneToOneField(
        Refund,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approval",
        db_comment="The refund requested once approved",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")

    class Meta:
        db_table = "order_refund_approvals"
        db_table_comment = "Staff refunds above the threshold, awaiting a second staff member"
        indexes = [
            LegacyIndex(fields=["status", "created_at"], name="ix_order_refund_appr_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="ck_order_refund_approvals_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"approval {self.pk} of {format_money(self.amount, self.currency)}"


class PurchaseLock(models.Model):
    """One row per user and product, made before their first order: every order
    creation and every payment of that user and product locks it first, so two
    concurrent requests can never make two live orders, nor two paid ones unnoticed."""

    user_bid = models.CharField(max_length=36, db_comment="User business identifier")
    product_bid = models.CharField(max_length=36, db_comment="Product business identifier")
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")

    class Meta:
        db_table = "order_purchase_locks"
        db_table_comment = "One lock row per user and product, taken before their orders"
        constraints = [
            models.UniqueConstraint(
                fields=["user_bid", "product_bid"], name="uq_order_purchase_locks_user_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_bid}/{self.product_bid}"


class AttentionKind(models.TextChoices):
    DUPLICATE_PURCHASE = "duplicate_purchase", "paid twice for one product"
    REFUND_FAILED = "refund_failed", "refund failed"
    REFUND_REVERSED = "refund_reversed", "refund failed after it succeeded"
    REFUND_CONFLICT = "refund_conflict", "refund succeeded after it failed"
    UNSETTLED = "unsettled", "reconciliation cannot settle it"
    COUPON_CONFLICT = "coupon_conflict", "paid with a coupon taken meanwhile"
    INTEGRATION_MISMATCH = (
        "integration_mismatch",
        "a notification signed by another merchant account",
    )


class AttentionStatus(models.TextChoices):
    WATCHING = "watching", "being retried"
    OPEN = "open", "needs attention"
    RESOLVED = "resolved"


class Attention(models.Model):
    """Something staff must look at: money the service cannot settle on its own.

    Reconciliation counts its failed tries at an attempt, refund or inbox event here
    (``watching``); past ``RECONCILE_MAX_TRIES`` the row is ``open`` and reconciliation
    leaves the subject alone until staff retry or resolve it. A refund that failed after
    succeeding and a second purchase kept under the ``flag`` policy open a row at once.
    """

    kind = models.CharField(max_length=32, choices=AttentionKind.choices, db_comment="What")
    status = models.CharField(
        max_length=16,
        choices=AttentionStatus.choices,
        default=AttentionStatus.OPEN,
        db_comment="watching, open or resolved",
    )
    subject_kind = models.CharField(
        max_length=16, db_comment="order, attempt, refund or event (inbox row id)"
    )
    subject_bid = models.CharField(max_length=64, db_comment="Its business identifier")
    channel = models.CharField(max_length=50, blank=True, default="", db_comment="Channel")
    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="attention",
        db_comment="The order it concerns",
    )
    reason = models.CharField(max_length=500, db_comment="Why it needs attention")
    tries = models.PositiveIntegerField(default=0, db_comment="Reconciliation tries that failed")
    last_answer = models.TextField(blank=True, default="", db_comment="Last provider answer")
    note = models.TextField(blank=True, default="", db_comment="Staff note on resolving it")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_comment="Staff user who resolved it",
    )
    resolved_at = models.DateTimeField(null=True, blank=True, db_comment="When it was resolved")
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")
    updated_at = models.DateTimeField(auto_now=True, db_comment="Update time")

    class Meta:
        db_table = "order_attention"
        db_table_comment = "What staff must look at: money the service cannot settle alone"
        verbose_name = "needs attention"
        verbose_name_plural = "needs attention"
        indexes = [
            LegacyIndex(fields=["status", "kind", "updated_at"], name="ix_order_attention_status"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject_kind", "subject_bid"], name="uq_order_attention_subject"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject_kind} {self.subject_bid}"


class StaffCreator(models.Model):
    """A staff account linked to one creator (course author) of the platform.

    A staff account with links sees, exports and refunds only the orders of its
    creators' courses (``orders.selectors.staff_creator_scope``); one without links,
    and every superuser, sees everything, as before links existed.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="creator_links",
        db_comment="Staff account",
    )
    creator_bid = models.CharField(max_length=36, db_comment="Creator (course owner) identifier")
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")

    class Meta:
        db_table = "order_staff_creators"
        db_table_comment = "Staff accounts restricted to the orders of some creators"
        verbose_name = "staff creator link"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "creator_bid"], name="uq_order_staff_creators_user_creator"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} -> {self.creator_bid}"
