"""Make a partner API key; the key is printed once, alone on the last line."""

from django.core.management.base import BaseCommand, CommandError

from bridge.models import Scope
from bridge.partners import api_key_create
from payments_project.errors import ServiceError


class Command(BaseCommand):
    help = "Make a partner API key (X-Api-Key) for the platform's backend."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who holds the key, e.g. platform-backend.")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated: {', '.join(Scope.values)}.",
        )

    def handle(self, *args, name, scopes, **options):
        wanted = [s.strip() for s in scopes.split(",") if s.strip()]
        try:
            row, key = api_key_create(name=name, scopes=wanted)
        except ServiceError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stderr.write(
            f"Key {row.name!r} made with scopes {', '.join(row.scopes)}. It is shown once, "
            "below; only its digest is kept."
        )
        self.stdout.write(key)
