"""The public API, under /api/."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from orders import api

router = DefaultRouter(trailing_slash=True)
router.register("products", api.ProductViewSet, basename="product")
router.register("orders", api.OrderViewSet, basename="order")
router.register("refunds", api.RefundViewSet, basename="refund")

urlpatterns = [path("api/", include(router.urls))]
