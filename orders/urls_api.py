"""The public API, under /api/."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from orders import api, partner_api

router = DefaultRouter(trailing_slash=True)
router.register("products", api.ProductViewSet, basename="product")
router.register("orders", api.OrderViewSet, basename="order")
router.register("refunds", api.RefundViewSet, basename="refund")

urlpatterns = [
    path("api/entitlements/", partner_api.EntitlementView.as_view(), name="entitlements"),
    path(
        "api/entitlements/grant/",
        partner_api.EntitlementGrantView.as_view(),
        name="entitlements-grant",
    ),
    path(
        "api/entitlements/revoke/",
        partner_api.EntitlementRevokeView.as_view(),
        name="entitlements-revoke",
    ),
    path("api/", include(router.urls)),
]
