"""The provider-facing URLs: webhooks (and dj-stripe's own)."""

from django.urls import include, path

from payments import views

urlpatterns = [
    path("webhooks/pingxx/", views.pingxx_webhook, name="webhook-pingxx"),
    path("webhooks/stripe/", views.stripe_webhook, name="webhook-stripe"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("webhooks/sandbox/", views.sandbox_webhook, name="webhook-sandbox"),
]
