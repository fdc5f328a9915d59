"""The one port by which news from providers goes up to the business: the payment event
sink.

payments/ never imports the app that sells things. The inbox, reconciliation's stored
events and dj-stripe's receivers report what a provider says through the sink named by
``settings.PAYMENT_EVENT_SINK`` (a dotted path, loaded and checked like the providers),
the way Oscar's order app hears payment events through one handler and dj-stripe's
consumers subscribe to its signals. The sink applies them (orders: the order's status,
refunds, history) and raises ``payments.errors`` for what cannot be applied.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from payments.providers.base import PaymentState, RefundState


@dataclass(frozen=True)
class Reported:
    """What applying a provider's report did: the order it concerned (its business id)
    and a short line for the inbox row."""

    order_bid: str
    result: str = ""


@runtime_checkable
class PaymentEventSink(Protocol):
    def payment_reported(
        self, *, channel: str, state: PaymentState, source: str, integration_bid: str | None
    ) -> Reported:
        """A provider's word on a payment; raises ``payments.errors`` when it cannot be
        applied (unknown attempt, amount mismatch, a merchant account's keys vouching
        for another's payment...). ``integration_bid``: whose keys verified it ("" the
        platform's); None when it came from a call made with the attempt's own keys."""

    def refund_reported(
        self, *, channel: str, state: RefundState, source: str, integration_bid: str | None
    ) -> Reported | None:
        """A provider's word on a refund; None for one that changes nothing here (a
        refund made at the provider that failed)."""

    def staff_note(self, *, order_bid: str, actor: Any, message: str) -> None:
        """A line on the order's history for what staff did to its provider events."""


SINK_ATTRIBUTES = ("payment_reported", "refund_reported", "staff_note")


@functools.cache
def _sink() -> PaymentEventSink:
    return import_string(settings.PAYMENT_EVENT_SINK)()


def sink() -> PaymentEventSink:
    """The configured sink (one instance per settings state)."""
    return _sink()


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs) -> None:
    if setting == "PAYMENT_EVENT_SINK":
        _sink.cache_clear()
