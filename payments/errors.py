"""What a provider reports that cannot be applied, as the payment event sink raises it.

The inbox (``payments.services.inbox_apply``) decides from these what to answer the
provider: retry later (503), refuse (400) or acknowledge a conflict (200). The sink, in
orders, raises them; neither side imports the other's code for it.
"""

from __future__ import annotations

from payments_project.errors import ServiceError


class PaymentEventError(ServiceError):
    code = "payment_event_error"
    http_status = 400


class AttemptNotFound(PaymentEventError):
    """A provider reports on a payment or refund this service has no record of (yet)."""

    code = "attempt_not_found"
    http_status = 404


class AmountMismatch(PaymentEventError):
    """A provider reports an amount or currency other than what was asked for."""

    code = "amount_mismatch"
    http_status = 400


class NotApplicableYet(PaymentEventError):
    """A provider event that cannot be applied before another one (kept for retry)."""

    code = "not_applicable_yet"
    http_status = 409


class OrderNotFound(PaymentEventError):
    """An attempt or refund names an order this database does not have."""

    code = "order_not_found"
    http_status = 404


class EventConflict(PaymentEventError):
    """A provider event that contradicts the recorded state and never will apply
    (a refund of an order already fully refunded): recorded, not retried."""

    code = "event_conflict"
    http_status = 409


class IntegrationMismatch(PaymentEventError):
    """A notification verified with one merchant account's keys names a payment another
    account (or the platform's) took: refused, so that no account settles another's."""

    code = "payment_integration_mismatch"
    http_status = 400
