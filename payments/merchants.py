"""Payment integrations: a creator's own merchant account on a channel (its Alipay app,
its WeChat Pay merchant), whose keys collect that creator's orders. Imported into
``payments.models``."""

from __future__ import annotations

from django.db import models

from payments_project.db import LegacyIndex, new_bid


class PaymentIntegration(models.Model):
    """One creator's merchant account on one channel.

    ``public_config`` holds what may be shown (app id, merchant id); ``secret_sealed``
    the keys, sealed by ``payments.credentials`` and never shown back. An order
    snapshots the integration it is paid through (``payment_integration_bid``); its
    refunds, reconciliation and notifications use that integration's keys for good,
    whether the integration is still active or not."""

    integration_bid = models.CharField(
        max_length=36, unique=True, default=new_bid, db_comment="Integration business id"
    )
    channel = models.CharField(max_length=16, db_comment="Payment channel (alipay, wechatpay)")
    creator_bid = models.CharField(max_length=36, db_comment="Creator business identifier")
    name = models.CharField(max_length=100, blank=True, default="", db_comment="A name for staff")
    public_config = models.JSONField(default=dict, blank=True, db_comment="Public fields")
    secret_sealed = models.TextField(
        blank=True, default="", db_comment="Secret fields, sealed (Fernet)"
    )
    secret_hints = models.JSONField(
        default=dict, blank=True, db_comment="Per secret field: a fingerprint, never its value"
    )
    active = models.BooleanField(
        default=True, db_comment="Takes new orders of the creator on its channel"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_comment="Creation time")
    updated_at = models.DateTimeField(auto_now=True, db_comment="Update time")

    class Meta:
        db_table = "payment_integrations"
        db_table_comment = "Creators' own merchant accounts, per channel"
        verbose_name = "payment integration (a creator's merchant account)"
        verbose_name_plural = "payment integrations (creators' merchant accounts)"
        indexes = [
            LegacyIndex(
                fields=["creator_bid", "channel", "active"],
                name="ix_payment_integrations_creator",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} · {self.creator_bid} · {self.name or self.integration_bid}"
