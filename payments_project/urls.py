from django.contrib import admin
from django.urls import path

from payments import views as payment_views
from payments_project import views

admin.site.site_header = "Course payments"
admin.site.site_title = "Course payments"
admin.site.index_title = "Orders, payments and refunds"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("webhooks/pingxx/", payment_views.pingxx_webhook, name="webhook-pingxx"),
    path("webhooks/sandbox/", payment_views.sandbox_webhook, name="webhook-sandbox"),
    path("sandbox/pay/<str:attempt_bid>/", payment_views.sandbox_pay, name="sandbox-pay"),
]
