"""The platform bridge's rows: the platform's users seen here, partner keys, and the
outbox of events for the platform with their deliveries.

An outbound event is written in the transaction of the change it reports (a
transactional outbox), with one delivery per endpoint; deliveries are sent after commit,
retried, and dead-lettered after ``GIVE_UP_AFTER``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from payments_project.db import LegacyIndex


class PlatformUser(models.Model):
    """A platform user seen here: their ``user_bid`` and the local shadow account made
    on first sight, so that permissions, history and the admin work for them."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="platform_identity",
        db_comment="Local shadow account",
    )
    user_bid = models.CharField(max_length=36, unique=True, db_comment="Platform user_bid")
    created_at = models.DateTimeField(auto_now_add=True, db_comment="First seen")

    class Meta:
        db_table = "bridge_platform_users"
        db_table_comment = "Platform users seen by the service, with their shadow account"

    def __str__(self) -> str:
        return self.user_bid


class Scope(models.TextChoices):
    ENTITLEMENTS = "entitlements", "entitlements: read, grant, revoke"
    PRODUCTS = "products", "products: create and update"


class ApiKey(models.Model):
    """A named key of the platform's backend, with its scopes. Only its SHA-256 digest
    is stored (the key is 256 random bits: a slow hash adds nothing); ``prefix`` shows
    which key it is without revealing it."""

    name = models.CharField(max_length=100, unique=True, db_comment="Who holds it")
    prefix = models.CharField(max_length=16, db_comment="First characters, to recognise it")
    digest = models.CharField(max_length=64, unique=True, db_comment="SHA-256 of the key, hex")
    scopes = models.JSONField(default=list, db_comment="What it may do: entitlements, products")
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")
    last_used_at = models.DateTimeField(null=True, blank=True, db_comment="Last used (±1 min)")
    revoked_at = models.DateTimeField(null=True, blank=True, db_comment="When it was revoked")

    class Meta:
        db_table = "bridge_api_keys"
        db_table_comment = "Partner API keys of the platform's backend, hashed"
        verbose_name = "partner API key"

    def __str__(self) -> str:
        return self.name

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class Endpoint(models.Model):
    """Where outbound events go. ``from_settings``: the row stands for
    PLATFORM_WEBHOOK_URL, whose secret is read from PLATFORM_WEBHOOK_SECRET, never
    stored."""

    name = models.CharField(max_length=100, unique=True, db_comment="Name")
    url = models.URLField(
        max_length=500,
        db_comment="HTTPS URL events are POSTed to (PLATFORM_WEBHOOK_URL's row: as first seen)",
    )
    secret = models.CharField(
        max_length=200, blank=True, default="", db_comment="Signing secret (HMAC-SHA256)"
    )
    active = models.BooleanField(default=True, db_comment="Gets new events")
    from_settings = models.BooleanField(
        default=False,
        db_comment="Stands for PLATFORM_WEBHOOK_URL: URL and secret read from the environment",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")

    class Meta:
        db_table = "bridge_endpoints"
        db_table_comment = "Receivers of outbound events"
        verbose_name = "event endpoint"

    def __str__(self) -> str:
        return self.name


class OutboundEvent(models.Model):
    """One event for the platform, as sent: ``body`` is the exact JSON POSTed."""

    event_id = models.CharField(max_length=40, unique=True, db_comment="Stable id (evt_...)")
    type = models.CharField(max_length=40, db_comment="order.paid, refund.succeeded, ...")
    subject = models.CharField(
        max_length=100, db_comment="Ordering key: events of one subject are delivered in order"
    )
    body = models.TextField(db_comment="The JSON body sent")
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")

    class Meta:
        db_table = "bridge_outbound_events"
        db_table_comment = "Transactional outbox of events for the platform"
        indexes = [LegacyIndex(fields=["subject", "id"], name="ix_bridge_events_subject")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "to deliver"
    DELIVERED = "delivered"
    DEAD = "dead", "dead-lettered"


class Delivery(models.Model):
    """One event for one endpoint: sent until answered 2xx, in order per subject."""

    event = models.ForeignKey(
        OutboundEvent, on_delete=models.CASCADE, related_name="deliveries", db_comment="Event"
    )
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries", db_comment="Endpoint"
    )
    subject = models.CharField(max_length=100, db_comment="The event's ordering key")
    state = models.CharField(
        max_length=16,
        choices=DeliveryState.choices,
        default=DeliveryState.PENDING,
        db_comment="pending, delivered or dead",
    )
    attempts = models.PositiveIntegerField(default=0, db_comment="POSTs made")
    next_at = models.DateTimeField(db_comment="When it is due (or its claim expires)")
    window_from = models.DateTimeField(
        db_comment="Start of its retry window: made, or sent again by staff"
    )
    last_status = models.PositiveSmallIntegerField(
        null=True, blank=True, db_comment="HTTP status of the last answer"
    )
    last_error = models.TextField(blank=True, default="", db_comment="Last failure")
    delivered_at = models.DateTimeField(null=True, blank=True, db_comment="When answered 2xx")
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")

    class Meta:
        db_table = "bridge_deliveries"
        db_table_comment = "Outbound events per endpoint, with their retries"
        verbose_name_plural = "deliveries"
        indexes = [
            LegacyIndex(fields=["state", "next_at"], name="ix_bridge_deliveries_due"),
            LegacyIndex(
                fields=["endpoint", "subject", "state", "id"], name="ix_bridge_deliveries_order"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="uq_bridge_deliveries"),
            models.CheckConstraint(
                condition=~Q(state="delivered") | Q(delivered_at__isnull=False),
                name="ck_bridge_deliveries_delivered_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id}"


class DeliveryAttempt(models.Model):
    """One POST of a delivery and what came back."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="tries", db_comment="Delivery"
    )
    status = models.PositiveSmallIntegerField(null=True, blank=True, db_comment="HTTP status")
    answer = models.TextField(blank=True, default="", db_comment="Answer body or error, cut")
    duration_ms = models.PositiveIntegerField(default=0, db_comment="How long it took")
    created_at = models.DateTimeField(auto_now_add=True, db_comment="When")

    class Meta:
        db_table = "bridge_delivery_attempts"
        db_table_comment = "Each POST of an outbound event"

    def __str__(self) -> str:
        return f"{self.delivery_id}: {self.status}"
