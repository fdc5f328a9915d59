"""The old frontend's paths, exactly as ``order.ts`` calls them (no trailing slash)."""

from django.urls import path

from orders.legacy_api import views

urlpatterns = [
    path("api/order/init-order", views.InitOrderView.as_view(), name="legacy-init-order"),
    path("api/order/reqiure-to-pay", views.RequireToPayView.as_view(), name="legacy-pay"),
    path("api/order/query-order", views.QueryOrderView.as_view(), name="legacy-query-order"),
    path(
        "api/order/apply-discount", views.ApplyDiscountView.as_view(), name="legacy-apply-discount"
    ),
    path(
        "api/order/payment-detail", views.PaymentDetailView.as_view(), name="legacy-payment-detail"
    ),
    path("api/order/stripe/sync", views.StripeSyncView.as_view(), name="legacy-stripe-sync"),
    path("api/order/payment/sync", views.PaymentSyncView.as_view(), name="legacy-payment-sync"),
]
