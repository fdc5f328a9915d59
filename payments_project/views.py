from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.csrf import csrf_exempt

from payments_project.errors import error_body


def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    return JsonResponse({"status": "ok", "database": "up"})


@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    """An unknown /api/ path answers in the API's error shape, not an HTML page."""
    return JsonResponse(error_body("not_found", "No such API endpoint."), status=404)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused CSRF check: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("csrf_failed", f"CSRF verification failed: {reason}"), status=403
        )
    return html_csrf_failure(request, reason=reason)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 (a refused Host, a malformed request): JSON under /api/ and
    /webhooks/, Django's own page elsewhere."""
    from django.views.defaults import bad_request as html_bad_request

    if request.path.startswith(("/api/", "/webhooks/")):
        return JsonResponse(error_body("bad_request", "The request is malformed."), status=400)
    return html_bad_request(request, exception)
