"""Errors of the order services, each with a stable code and HTTP status."""

from __future__ import annotations

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


class RefundExceedsRefundable(OrderError):
    code = "refund_exceeds_refundable"
    http_status = 400


class AttemptNotFound(OrderError):
    """A provider reports on a payment or refund this service has no record of (yet)."""

    code = "attempt_not_found"
    http_status = 404


class AmountMismatch(OrderError):
    """A provider reports an amount or currency other than what was asked for."""

    code = "amount_mismatch"
    http_status = 400


class NotApplicableYet(OrderError):
    """A provider event that cannot be applied before another one (kept for retry)."""

    code = "not_applicable_yet"
    http_status = 409


class OrderNotFound(OrderError):
    """An attempt or refund names an order this database does not have."""

    code = "order_not_found"
    http_status = 404


class EventConflict(OrderError):
    """A provider event that contradicts the recorded state and never will apply
    (a refund of an order already fully refunded): recorded, not retried."""

    code = "event_conflict"
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
