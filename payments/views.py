"""Webhook receivers. They call services, never providers directly: each verifies and
stores a delivery, then has it applied (payments.tasks.webhook_deliver)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import registry
from payments.services import WebhookOutcome, webhook_refuse_too_large
from payments.tasks import webhook_deliver


def _too_large(request: HttpRequest, channel: str) -> WebhookOutcome | None:
    """A delivery declaring more than WEBHOOK_MAX_BODY_BYTES: refused and recorded from
    its declared size alone, never read."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if (
        declared.isascii()
        and declared.isdigit()
        and int(declared) > settings.WEBHOOK_MAX_BODY_BYTES
    ):
        return webhook_refuse_too_large(
            channel=channel,
            body_bytes=int(declared),
            headers=request.headers,
            remote_addr=request.META.get("REMOTE_ADDR"),
        )
    return None


def _answer(outcome: WebhookOutcome, channel: str) -> JsonResponse:
    return JsonResponse(
        {"code": outcome.code, "message": outcome.message, "payment_channel": channel},
        status=outcome.http_status,
    )


def _deliver(request: HttpRequest, channel: str, integration_bid: str = "") -> WebhookOutcome:
    return _too_large(request, channel) or webhook_deliver(
        channel=channel,
        body=request.body,
        headers=request.headers,
        remote_addr=request.META.get("REMOTE_ADDR"),
        integration_bid=integration_bid,
    )


def _webhook(request: HttpRequest, channel: str) -> JsonResponse:
    return _answer(_deliver(request, channel), channel)


@csrf_exempt
@require_POST
def pingxx_webhook(request: HttpRequest) -> JsonResponse:
    return _webhook(request, "pingxx")


@csrf_exempt
@require_POST
def sandbox_webhook(request: HttpRequest) -> JsonResponse:
    if "sandbox" not in registry.enabled_channels():
        raise Http404("The sandbox channel is not enabled.")
    return _webhook(request, "sandbox")


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """The stable Stripe webhook URL, verified with STRIPE_WEBHOOK_SECRET (``manage.py
    stripe_webhook_endpoint`` registers it at Stripe). dj-stripe's sync of the event's
    objects runs in a worker after the event is applied (payments.stripe_webhooks)."""
    if "x-djstripe-webhook-secret" in request.headers:
        # dj-stripe's own view, with DEBUG, verifies with a secret the request itself
        # names: refused here too, so that no one relies on it.
        return JsonResponse(
            {
                "code": "webhook_signature_invalid",
                "message": "A webhook cannot name its own signing secret.",
                "payment_channel": "stripe",
            },
            status=400,
        )
    return _webhook(request, "stripe")


@csrf_exempt
@require_POST
def alipay_webhook(request: HttpRequest, integration_bid: str = "") -> HttpResponse:
    """Alipay's asynchronous notifications (a signed form). Alipay stops sending once
    the body is the text ``success``; anything else (``failure``) is sent again, for
    about a day."""
    outcome = _deliver(request, "alipay", integration_bid)
    ok = outcome.http_status < 300
    response = HttpResponse(
        "success" if ok else "failure",
        status=outcome.http_status,
        content_type="text/plain; charset=utf-8",
    )
    response["X-Payment-Code"] = outcome.code
    return response


@csrf_exempt
@require_POST
def wechatpay_webhook(request: HttpRequest, integration_bid: str = "") -> JsonResponse:
    """WeChat Pay's notifications: a 2xx acknowledges; WeChat Pay sends again, for a
    day, on anything else, whose body it reads as ``{"code": "FAIL", "message": ...}``."""
    outcome = _deliver(request, "wechatpay", integration_bid)
    if outcome.http_status < 300:
        body = {"code": "SUCCESS", "message": outcome.code}
    else:
        body = {"code": "FAIL", "message": f"{outcome.code}: {outcome.message}"[:256]}
    return JsonResponse(body, status=outcome.http_status)
