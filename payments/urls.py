"""The provider-facing URLs: webhooks. dj-stripe's own webhook view is not routed: every
Stripe delivery goes through /webhooks/stripe/ and the inbox."""

from django.urls import path

from payments import views

urlpatterns = [
    path("webhooks/pingxx/", views.pingxx_webhook, name="webhook-pingxx"),
    path("webhooks/stripe/", views.stripe_webhook, name="webhook-stripe"),
    path("webhooks/sandbox/", views.sandbox_webhook, name="webhook-sandbox"),
]
