"""Answers for the requests that fail below every view: outages and stray /api/ errors.

Django turns an exception raised in a middleware or view into a response at the layer
that raised it, so the outermost middleware never sees the exception itself. The
``got_request_exception`` signal, sent for every unhandled exception with its request,
marks the request instead; ``OutageMiddleware`` then replaces Django's HTML 500 with
the API's JSON error body:

- the database or the cache (Redis) unreachable: 503 ``service_unavailable`` with
  ``Retry-After``, on every URL (webhook providers retry a 503; the admin and pages get
  the same short JSON, never a traceback);
- SQLite still locked by another writer after ``DATABASE_BUSY_TIMEOUT``: 503
  ``database_busy``;
- anything else under ``/api/`` or ``/webhooks/``: JSON 500 ``internal_error``.

Django closes a broken database connection at the end of the request, so the next
request connects afresh: the service recovers on its own once the database is back.
"""

from __future__ import annotations

import logging
import sys

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

from payments_project.errors import error_body

logger = logging.getLogger("payments_project")

RETRY_AFTER_SECONDS = 5
JSON_PREFIXES = ("/api/", "/webhooks/")


def _cache_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a requirement
        return ()
    return (RedisConnectionError, RedisTimeoutError)


# MySQL/MariaDB client and server errors that mean the server is out of reach (gone,
# refusing, restarting, out of connections), and those of a write that waited too long.
MYSQL_UNREACHABLE = frozenset({1040, 1053, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031})
MYSQL_BUSY = frozenset({1205, 1213})
UNAVAILABLE = ("service_unavailable", "The database is unavailable; try again shortly.")
BUSY = ("database_busy", "The database is busy with other writes; try again in a moment.")


def classify(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) for an outage, None for any other error.

    Only errors that a retry can cure count: a broken or refused connection, a lock
    that could not be had. A missing table or column stays a 500, loudly, since no
    retry will ever make it pass."""
    if isinstance(exc, InterfaceError):  # the connection is already closed
        return UNAVAILABLE
    if isinstance(exc, OperationalError):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        text = str(exc)
        if code in MYSQL_BUSY or "database is locked" in text or "table is locked" in text:
            return BUSY
        if code in MYSQL_UNREACHABLE or "unable to open database" in text:
            return UNAVAILABLE
        return None
    if isinstance(exc, _cache_errors()):
        return "service_unavailable", "The cache is unavailable; try again shortly."
    return None


def outage_response(code: str, message: str, path: str = "") -> JsonResponse:
    body = error_body(code, message)
    if path.startswith("/webhooks/"):
        body["payment_channel"] = path.split("/")[2] or None
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@receiver(got_request_exception)
def _mark_request(sender, request: HttpRequest | None = None, **kwargs) -> None:
    if request is not None:
        request._unhandled_exception = sys.exc_info()[1]


class OutageMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except Exception as exc:  # raised by a layer that does not convert exceptions
            request._unhandled_exception = exc
            response = None
        exc = getattr(request, "_unhandled_exception", None)
        if exc is None:
            return response
        outage = classify(exc)
        if outage is not None:
            logger.error(
                "request failed: %s: %s",
                outage[0],
                exc,
                extra={"path": request.path, "code": outage[0]},
            )
            return outage_response(*outage, path=request.path)
        if response is None:
            raise exc
        if request.path.startswith(JSON_PREFIXES) and response.status_code >= 500:
            return JsonResponse(
                error_body("internal_error", "Something went wrong on our side."),
                status=500,
            )
        return response
