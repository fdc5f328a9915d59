"""Errors of the order services, each with a stable code and HTTP status."""

from __future__ import annotations

# What a provider reports that cannot be applied: raised by the services that apply it
# (the payment event sink) and read by the webhook inbox, so they live in payments.
from payments.errors import (  # noqa: F401
    AmountMismatch,
    AttemptNotFound,
    EventConflict,
    IntegrationMismatch,
    NotApplicableYet,
    OrderNotFound,
)
from payments_project.errors import ServiceError


class OrderError(ServiceError):
    code = "order_error"
    http_status = 400


class ProductNotFound(OrderError):
    code = "product_not_found"
    http_status = 404


class AlreadyPurchased(OrderError):
    code = "already_purchased"
    http_status = 409


class OrderNotPayable(OrderError):
    code = "order_not_payable"
    http_status = 409


class OrderExpired(OrderNotPayable):
    code = "order_expired"


class TransitionNotAllowed(OrderError):
    code = "transition_not_allowed"
    http_status = 409


class OrderNotRefundable(OrderError):
    code = "order_not_refundable"
    http_status = 409


class RefundCurrencyMismatch(OrderError):
    """The payment to refund was made in another currency than the order's: the amount
    would mean other money at the provider, so nothing is sent (recorded on the order)."""

    code = "currency_mismatch"
    http_status = 409


class RefundExceedsRefundable(OrderError):
    code = "refund_exceeds_refundable"
    http_status = 400


class RefundConfirmationStale(OrderError):
    """A refund confirmed against what the order had left to refund then, which has
    changed since (another refund, or the same form sent twice): nothing is sent."""

    code = "refund_confirmation_stale"
    http_status = 409


class PriceDoesNotFitCurrency(OrderError):
    """A change to a product whose price would no longer fit its currency (a price
    with cents for a JPY product, or JPY for a product priced with cents)."""

    code = "price_does_not_fit_currency"
    http_status = 409


class ApprovalNotAllowed(OrderError):
    """A refund approved by the staff member who asked for it, or by nobody."""

    code = "approval_not_allowed"
    http_status = 403


class ApprovalAlreadyDecided(OrderError):
    code = "approval_already_decided"
    http_status = 409


class EntitlementNotFound(OrderError):
    """A revoke of what the user does not own."""

    code = "entitlement_not_found"
    http_status = 404
