"""The pages of selling a course (the API is in orders.urls_api)."""

from django.urls import path

from orders import views

urlpatterns = [
    path("", views.shop, name="shop"),
    path("buy/<str:product_bid>/", views.buy, name="shop-buy"),
    path("orders/", views.my_orders, name="shop-orders"),
    path("orders/<str:order_bid>/", views.order_detail, name="shop-order"),
    path("orders/<str:order_bid>/sync/", views.order_sync, name="shop-order-sync"),
    path("orders/<str:order_bid>/state/", views.order_state, name="shop-order-state"),
    path("sandbox/pay/<str:attempt_bid>/", views.sandbox_pay, name="sandbox-pay"),
]
