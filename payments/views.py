"""Webhook receivers. They call services, never providers directly (the Stripe URL asks
the provider to check a signature before dj-stripe stores anything)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import registry
from payments.services import (
    WebhookOutcome,
    webhook_receive,
    webhook_refuse_too_large,
    webhook_screen,
)
from payments_project.middleware import classify, outage_response

logger = logging.getLogger(__name__)


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


def _webhook(request: HttpRequest, channel: str) -> JsonResponse:
    outcome = _too_large(request, channel) or webhook_receive(
        channel=channel,
        body=request.body,
        headers=request.headers,
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    return _answer(outcome, channel)


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
    """The stable Stripe webhook URL: dj-stripe's processing, with the endpoint whose
    secret is STRIPE_WEBHOOK_SECRET (``manage.py stripe_webhook_endpoint`` makes it)."""
    from djstripe.models import WebhookEndpoint
    from djstripe.views import ProcessWebhookView

    if "x-djstripe-webhook-secret" in request.headers:
        # With DEBUG, dj-stripe would verify the signature with a secret the request
        # itself names: anyone could sign their own events.
        return JsonResponse(
            {
                "code": "webhook_signature_invalid",
                "message": "A webhook cannot name its own signing secret.",
                "payment_channel": "stripe",
            },
            status=400,
        )
    secret = settings.STRIPE_WEBHOOK_SECRET
    endpoint = WebhookEndpoint.objects.filter(secret=secret).first() if secret else None
    if endpoint is None:
        return JsonResponse(
            {
                "code": "webhook_not_configured",
                "message": "No Stripe webhook endpoint has STRIPE_WEBHOOK_SECRET: run "
                "manage.py stripe_webhook_endpoint.",
                "payment_channel": "stripe",
            },
            status=503,
        )
    # Screened first, so that dj-stripe, which stores every delivery whole before it
    # verifies, only ever sees deliveries that are signed and within the size limit: a
    # forged one is recorded in our bounded inbox instead.
    refused = _too_large(request, "stripe") or webhook_screen(
        channel="stripe",
        body=request.body,
        headers=request.headers,
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    if refused is not None:
        return _answer(refused, "stripe")
    try:
        return ProcessWebhookView.as_view()(request, uuid=endpoint.djstripe_uuid)
    except Exception as exc:
        outage = classify(exc)
        if outage is not None:  # nothing could be stored: Stripe must send it again
            logger.error("stripe webhook not stored: %s", exc)
            return outage_response(*outage, path=request.path)
        # dj-stripe has stored the delivery with the error; Stripe will send it again.
        logger.exception("stripe webhook not applied")
        return JsonResponse(
            {
                "code": "apply_failed",
                "message": "The event is stored and will be applied on a later delivery.",
                "payment_channel": "stripe",
            },
            status=500,
        )
