from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    return JsonResponse({"status": "ok", "database": "up"})


def api_not_found(request: HttpRequest) -> JsonResponse:
    """An unknown /api/ path answers in the API's error shape, not an HTML page."""
    from payments_project.errors import error_body

    return JsonResponse(error_body("not_found", "No such API endpoint."), status=404)
