"""The service's URLs, and the reference view ``bench/reference`` ("B").

B is a bare Django view doing one INSERT in a transaction, behind the same middleware,
workers and database as the service: every scenario is printed as a ratio to it.
"""

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

# The table the benchmark makes with raw SQL (bench.data.reference_table_create).
REFERENCE_TABLE = "bench_reference"


@csrf_exempt
@require_http_methods(["GET", "POST"])
def reference(request: HttpRequest) -> HttpResponse:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {REFERENCE_TABLE} (created_at) VALUES (NOW(6))")  # noqa: S608
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [
    path("bench/reference", reference, name="bench-reference"),
    path("", include("payments_project.urls")),
]

# The service's handler for a request refused before any view (payments_project.urls).
handler400 = "payments_project.views.bad_request"
