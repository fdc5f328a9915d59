"""Errors of discounts, each with a stable code and HTTP status."""

from __future__ import annotations

from payments_project.errors import ServiceError


class CouponError(ServiceError):
    code = "coupon_error"
    http_status = 400


class CouponNotFound(CouponError):
    """No code like this, or its batch is switched off or deleted."""

    code = "coupon_not_found"
    http_status = 404


class CouponExpired(CouponError):
    """The batch's window has ended."""

    code = "coupon_expired"
    http_status = 400


class CouponNotStarted(CouponError):
    """The batch's window has not begun."""

    code = "coupon_not_started"
    http_status = 400


class CouponNotApplicable(CouponError):
    """Another product, another currency, or a promotion that takes off more and does
    not combine with the code."""

    code = "coupon_not_applicable"
    http_status = 400


class CouponUsed(CouponError):
    """A single-use code already held by an order (reserved or used)."""

    code = "coupon_used"
    http_status = 409


class CouponLimitReached(CouponError):
    """The batch's total or the user's own cap is taken."""

    code = "coupon_limit_reached"
    http_status = 409
