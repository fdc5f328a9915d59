"""Create or update the dj-stripe WebhookEndpoint that /webhooks/stripe/ uses.

Without options, the row is made from settings (STRIPE_WEBHOOK_SECRET, the mode of
STRIPE_SECRET_KEY), for an endpoint registered at Stripe by other means. With
``--register URL`` the endpoint is registered at Stripe first, for the events this
service handles, and the secret Stripe returns is printed, to be set as
STRIPE_WEBHOOK_SECRET.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from payments import registry
from payments.providers.base import ProviderError
from payments.stripe_webhooks import HANDLED_EVENTS

TOLERANCE_SECONDS = 300


class Command(BaseCommand):
    help = "Create or update the Stripe webhook endpoint row (optionally registering it)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--url",
            default="",
            help="The endpoint's public URL, recorded on the row (https://<host>/webhooks/stripe/).",
        )
        parser.add_argument(
            "--account-id",
            default="",
            help=(
                "Record this Stripe account as the owner of STRIPE_SECRET_KEY without asking "
                "Stripe: for Stripe-compatible servers with no /v1/account (localstripe)."
            ),
        )
        parser.add_argument(
            "--register",
            metavar="URL",
            default="",
            help="Register URL at Stripe for the handled events and store what Stripe returns.",
        )

    def handle(self, *args, url: str, register: str, account_id: str, **options):
        from djstripe.models import WebhookEndpoint
        from djstripe.settings import djstripe_settings

        livemode = bool(settings.STRIPE_LIVE_MODE)
        if account_id:
            self._record_account(account_id, livemode)
        if register:
            try:
                provider = registry.get_provider_any("stripe")
                endpoint_id, secret = provider.register_webhook_endpoint(
                    url=register,
                    events=list(HANDLED_EVENTS),
                    api_version=djstripe_settings.STRIPE_API_VERSION,
                )
            except ProviderError as exc:
                raise CommandError(f"Stripe refused the registration: {exc.message}") from exc
            url = register
        else:
            secret = settings.STRIPE_WEBHOOK_SECRET
            if not secret:
                raise CommandError("STRIPE_WEBHOOK_SECRET is not set.")
            if not secret.startswith("whsec_"):
                raise CommandError("STRIPE_WEBHOOK_SECRET is not a webhook signing secret.")
            endpoint_id = "we_" + hashlib.sha256(secret.encode()).hexdigest()[:24]

        with transaction.atomic():
            endpoint = (
                WebhookEndpoint.objects.select_for_update().filter(secret=secret).first()
                or WebhookEndpoint.objects.select_for_update().filter(id=endpoint_id).first()
            )
            created = endpoint is None
            if created:
                endpoint = WebhookEndpoint(id=endpoint_id)
            endpoint.secret = secret
            endpoint.url = url or endpoint.url or "https://localhost/webhooks/stripe/"
            endpoint.livemode = livemode
            endpoint.enabled_events = list(HANDLED_EVENTS)
            endpoint.status = "enabled"
            endpoint.api_version = djstripe_settings.STRIPE_API_VERSION
            endpoint.djstripe_tolerance = TOLERANCE_SECONDS
            endpoint.djstripe_validation_method = "verify_signature"
            endpoint.save()

        self.stdout.write(
            f"{'Created' if created else 'Updated'} webhook endpoint {endpoint.id} "
            f"({'live' if livemode else 'test'} mode) for {endpoint.url}; "
            f"{len(HANDLED_EVENTS)} event types; Stripe posts to /webhooks/stripe/."
        )
        if register:
            self.stdout.write(f"Set STRIPE_WEBHOOK_SECRET={secret} in the environment.")

    def _record_account(self, account_id: str, livemode: bool) -> None:
        from djstripe.enums import APIKeyType
        from djstripe.models import Account, APIKey

        if not settings.STRIPE_SECRET_KEY:
            raise CommandError("STRIPE_SECRET_KEY is not set.")
        with transaction.atomic():
            account, _ = Account.objects.get_or_create(
                id=account_id,
                defaults={
                    "livemode": livemode,
                    "stripe_data": {"id": account_id, "object": "account", "type": "standard"},
                },
            )
            if not APIKey.objects.filter(secret=settings.STRIPE_SECRET_KEY).exists():
                APIKey.objects.create(
                    secret=settings.STRIPE_SECRET_KEY,
                    type=APIKeyType.secret,
                    livemode=livemode,
                    name="from settings",
                    djstripe_owner_account=account,
                )
        self.stdout.write(f"Recorded account {account_id} for STRIPE_SECRET_KEY.")
