from django.contrib import admin
from django.urls import path

from payments_project import views

admin.site.site_header = "Course payments"
admin.site.site_title = "Course payments"
admin.site.index_title = "Orders, payments and refunds"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
]
