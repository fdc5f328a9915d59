"""The old system's envelope, order status numbers and error numbers.

Every answer is HTTP 200 with ``{"code": 0, "message": "success", "data": ...}``, as the
old ``make_common_response`` wrote it. An error is HTTP 200 too, with the old system's
number in ``code`` (from its ``error_codes.json``), the message, and this service's own
stable code in ``error``: the one the REST API answers for the same failure, since every
error is first rendered by the REST API's handler and only then put in the envelope.
"""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response

from orders.models import OrderStatus
from payments_project.errors import api_exception_handler

SUCCESS_MESSAGE = "success"

# ---- order statuses ----

# The old system's numbers are this service's for 501-505. It has no cancelled order
# (506 is this service's own, kept as it is); a revoke there set 503 (refund), which is
# what a revoked order (507) shows it.
STATUS_CODES: dict[int, int] = {
    OrderStatus.INIT: 501,
    OrderStatus.PAID: 502,
    OrderStatus.REFUNDED: 503,
    OrderStatus.UNPAID: 504,
    OrderStatus.TIMEOUT: 505,
    OrderStatus.CANCELLED: 506,
    OrderStatus.REVOKED: 503,
}
# The old ``status_desc`` (its en-US texts), by old number.
STATUS_DESCRIPTIONS: dict[int, str] = {
    501: "Not initiated",
    502: "Success",
    503: "Refund",
    504: "To be paid",
    505: "Expired",
    506: "Cancelled",
}


def legacy_status(status: int) -> int:
    return STATUS_CODES[OrderStatus(status)]


# ---- errors ----

UNKNOWN_ERROR = 9999  # server.common.unknownError
PARAMS_ERROR = 2001  # server.common.paramsError
WECHAT_OPEN_ID_REQUIRED = 5002  # server.pay.wechatOpenIdRequired

# This service's stable code -> the old system's number (the key in its error_codes.json).
ERROR_CODES: dict[str, int] = {
    # The frontend tests 1001, 1004 and 1005 (request.ts): it signs the user out.
    "not_authenticated": 1004,  # server.user.userNotLogin
    "token_expired": 1005,  # server.user.userTokenExpired
    "authentication_failed": 1001,  # server.user.userNotFound: a token it cannot read
    "permission_denied": 401,  # server.shifu.noPermission
    "csrf_failed": 401,
    "invalid": PARAMS_ERROR,
    "invalid_input": PARAMS_ERROR,
    "malformed_request": PARAMS_ERROR,
    "unsupported_media_type": PARAMS_ERROR,
    "request_too_large": PARAMS_ERROR,
    # The old app answered an HTTP error with its status as the code.
    "method_not_allowed": 405,
    "throttled": 429,
    "not_found": 3001,  # server.order.orderNotFound
    "attempt_not_found": 3001,
    "order_not_payable": 3003,  # server.order.orderStatusError
    "transition_not_allowed": 3003,
    "provider_error": 3004,  # server.order.orderPayError
    "provider_unavailable": 3004,
    "provider_refused": 3004,
    "provider_bad_response": 3004,
    "amount_mismatch": 3004,
    "order_expired": 3006,  # server.order.orderPayExpired
    "already_purchased": 3008,  # server.order.orderHasPaid
    "coupon_not_found": 3101,  # server.discount.discountNotFound
    "coupon_used": 3102,  # server.discount.discountAlreadyUsed
    "coupon_not_started": 3104,  # server.discount.discountNotStart
    "coupon_limit_reached": 3107,  # server.discount.discountLimitExceeded
    "coupon_expired": 3108,  # server.discount.discountAlreadyExpired
    # The old system raised server.discount.discountNotApply, missing from its own table:
    # its frontend got 9999.
    "coupon_not_applicable": UNKNOWN_ERROR,
    "product_not_found": 4001,  # server.shifu.courseNotFound
    "payment_channel_not_enabled": 5001,  # server.pay.payChannelNotSupport
    "payment_channel_not_supported": 5001,  # an order of a channel shown, not run, here
    "payment_method_invalid": 5001,
    "currency_not_supported": 5001,
    "unsupported_currency": 5001,
    # Outages and the unexpected: server.common.unknownError.
    "service_unavailable": UNKNOWN_ERROR,
    "database_busy": UNKNOWN_ERROR,
    "token_store_unavailable": UNKNOWN_ERROR,
    "internal_error": UNKNOWN_ERROR,
}


def legacy_error_code(body: dict[str, Any]) -> int:
    """The old number for a REST error body."""
    code = body.get("code", "")
    details = body.get("details")
    missing = details.get("missing") if isinstance(details, dict) else None
    if code == "payment_method_invalid" and missing == "open_id":
        return WECHAT_OPEN_ID_REQUIRED
    return ERROR_CODES.get(code, UNKNOWN_ERROR)


def envelope(data: dict[str, Any]) -> Response:
    return Response({"code": 0, "message": SUCCESS_MESSAGE, "data": data})


def error_envelope(body: dict[str, Any]) -> Response:
    """A REST error body in the old envelope, HTTP 200: the old number in ``code``, the
    stable code in ``error``, and what else the REST body says (field ``errors``, the
    ``payment_channel``) beside them."""
    message = body.get("message", "")
    fields = body.get("errors") or {}
    if fields:
        message += " " + "; ".join(f"{name}: {_text(value)}" for name, value in fields.items())
    answer: dict[str, Any] = {
        "code": legacy_error_code(body),
        "message": message,
        "error": body.get("code", "error"),
    }
    if fields:
        answer["errors"] = fields
    if body.get("payment_channel"):
        answer["payment_channel"] = body["payment_channel"]
    return Response(answer)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{name}: {_text(item)}" for name, item in value.items())
    return str(value)


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's exception handler for these views: the REST API's answer, in the envelope."""
    return error_envelope(api_exception_handler(exc, context).data)
