"""The project's URLs. The kernel imports no app: each app's URLs are included by name."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from payments_project import views

urlpatterns = [
    path("", include("orders.urls_api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get", "head"]),
        name="swagger-ui",
    ),
    re_path(r"^api/", views.api_not_found),
    path("", include("orders.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("", include("payments.urls")),
]

# A bad request refused before any view (a Host not in ALLOWED_HOSTS...): JSON under /api/.
handler400 = "payments_project.views.bad_request"
