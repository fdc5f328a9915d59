"""Revoke a partner API key by name: it stops working at once."""

from django.core.management.base import BaseCommand, CommandError

from bridge.partners import api_key_revoke
from payments_project.errors import ServiceError


class Command(BaseCommand):
    help = "Revoke a partner API key by name."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        try:
            row = api_key_revoke(name=name)
        except ServiceError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(f"Key {row.name!r} revoked at {row.revoked_at:%Y-%m-%d %H:%M:%S %Z}.")
