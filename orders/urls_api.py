"""The public API, under /api/."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from orders import api, coupon_api, partner_api

router = DefaultRouter(trailing_slash=True)
router.register("products", api.ProductViewSet, basename="product")
router.register("orders", api.OrderViewSet, basename="order")
router.register("refunds", api.RefundViewSet, basename="refund")
router.register("coupon-batches", coupon_api.CouponBatchViewSet, basename="coupon-batch")

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
    path("api/coupons/redeem/", coupon_api.RedeemView.as_view(), name="coupons-redeem"),
    # The platform's old frontend (/api/order/...), with LEGACY_ORDER_API_ENABLED.
    path("", include("orders.legacy_api.urls")),
    path("api/", include(router.urls)),
]
