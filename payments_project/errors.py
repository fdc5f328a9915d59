"""The base of every error this service raises on purpose.

Each error carries a stable machine-readable ``code`` and the HTTP status the API
answers with, so callers branch on the code, never on the message.
"""

from __future__ import annotations


class ServiceError(Exception):
    code = "service_error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(ServiceError):
    code = "invalid_input"
    http_status = 400


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def error_body(
    code: str, message: str, *, errors: object = None, channel: str | None = None, **extra
) -> dict:
    """The JSON every API error answers with: code, message, errors, payment_channel."""
    body = {"code": code, "message": message, "errors": _plain(errors or {})}
    if channel:
        body["payment_channel"] = channel
    body.update({k: _plain(v) for k, v in extra.items()})
    return body


# DRF's own errors, by class name: the stable code each answers with.
DRF_CODES = {
    "ValidationError": "invalid",
    "ParseError": "malformed_request",
    "AuthenticationFailed": "authentication_failed",
    "TokenExpired": "token_expired",  # bridge.errors: a platform token past its expiry
    "NotAuthenticated": "not_authenticated",
    "PermissionDenied": "permission_denied",
    "NotFound": "not_found",
    "Http404": "not_found",
    "MethodNotAllowed": "method_not_allowed",
    "NotAcceptable": "not_acceptable",
    "UnsupportedMediaType": "unsupported_media_type",
    "Throttled": "throttled",
}


def api_exception_handler(exc: Exception, context: dict):
    """DRF's exception handler: every error as ``error_body``, never a traceback, and
    always JSON, whatever the view renders otherwise (the schema's YAML, Swagger UI)."""
    import logging

    from django.core.exceptions import PermissionDenied, RequestDataTooBig
    from django.http import Http404
    from rest_framework import exceptions
    from rest_framework.response import Response

    from payments_project.middleware import RETRY_AFTER_SECONDS, classify

    _render_as_json(context.get("request"))
    outage = classify(exc)
    if outage is not None:
        logging.getLogger("payments_project").error("API request failed: %s: %s", outage[0], exc)
        return Response(
            error_body(*outage), status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )
    if isinstance(exc, ServiceError):
        channel = getattr(exc, "channel", None)
        return Response(
            error_body(exc.code, exc.message, channel=channel, details=exc.details),
            status=exc.http_status,
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("request_too_large", "The request body is too large."), status=413
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        code = DRF_CODES.get(type(exc).__name__, "error")
        if code == "permission_denied" and str(exc.detail).startswith("CSRF Failed"):
            code = "csrf_failed"  # as payments_project.views.csrf_failure answers
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.ValidationError):
            errors = exc.detail
            if not isinstance(errors, dict):  # raised outside a serializer: a bare list
                errors = {"non_field_errors": errors}
            return Response(
                error_body(code, "The request is not valid.", errors=errors), status=400
            )
        return Response(error_body(code, str(exc.detail)), status=exc.status_code, headers=headers)
    logging.getLogger("payments_project").exception("unexpected API error")
    return Response(error_body("internal_error", "Something went wrong on our side."), status=500)


def _render_as_json(request) -> None:
    """Make DRF render the error with JSON: DRF renders it with the view's negotiated
    renderer, which is no JSON for the schema (YAML) and Swagger UI (HTML)."""
    from rest_framework.renderers import JSONRenderer

    renderer = getattr(request, "accepted_renderer", None)
    if request is not None and getattr(renderer, "media_type", "") != "application/json":
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
