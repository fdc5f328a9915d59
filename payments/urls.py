"""The provider-facing URLs: webhooks. dj-stripe's own webhook view is not routed: every
Stripe delivery goes through /webhooks/stripe/ and the inbox."""

from django.urls import path

from payments import views

urlpatterns = [
    path("webhooks/pingxx/", views.pingxx_webhook, name="webhook-pingxx"),
    path("webhooks/stripe/", views.stripe_webhook, name="webhook-stripe"),
    path("webhooks/sandbox/", views.sandbox_webhook, name="webhook-sandbox"),
    # Alipay and WeChat Pay: the platform's account, and each creator's own
    # (payments.merchant.notify_url), verified with that account's keys.
    path("webhooks/alipay/", views.alipay_webhook, name="webhook-alipay"),
    path("webhooks/alipay/<str:integration_bid>/", views.alipay_webhook, name="webhook-alipay"),
    path("webhooks/wechatpay/", views.wechatpay_webhook, name="webhook-wechatpay"),
    path(
        "webhooks/wechatpay/<str:integration_bid>/",
        views.wechatpay_webhook,
        name="webhook-wechatpay",
    ),
]
