from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from orders import api
from orders import views as order_views
from payments import views as payment_views
from payments_project import views

admin.site.site_header = "Course payments"
admin.site.site_title = "Course payments"
admin.site.index_title = "Orders, payments and refunds"

router = DefaultRouter(trailing_slash=True)
router.register("products", api.ProductViewSet, basename="product")
router.register("orders", api.OrderViewSet, basename="order")
router.register("refunds", api.RefundViewSet, basename="refund")

urlpatterns = [
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get", "head"]),
        name="swagger-ui",
    ),
    re_path(r"^api/", views.api_not_found),
    path("", order_views.shop, name="shop"),
    path("buy/<str:product_bid>/", order_views.buy, name="shop-buy"),
    path("orders/<str:order_bid>/", order_views.order_detail, name="shop-order"),
    path("orders/<str:order_bid>/sync/", order_views.order_sync, name="shop-order-sync"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("webhooks/pingxx/", payment_views.pingxx_webhook, name="webhook-pingxx"),
    path("webhooks/stripe/", payment_views.stripe_webhook, name="webhook-stripe"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("webhooks/sandbox/", payment_views.sandbox_webhook, name="webhook-sandbox"),
    path("sandbox/pay/<str:attempt_bid>/", payment_views.sandbox_pay, name="sandbox-pay"),
]

# A bad request refused before any view (a Host not in ALLOWED_HOSTS...): JSON under /api/.
handler400 = "payments_project.views.bad_request"
