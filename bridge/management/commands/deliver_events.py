"""Send the outbound events that are due: one pass, or ``--loop`` to keep going (what
a deployment with no Celery worker runs beside the web process)."""

import time

from django.core.management.base import BaseCommand

from bridge.outbox import deliveries_send


class Command(BaseCommand):
    help = "Send the outbound events due to the platform's endpoints (one pass; --loop)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep sending until stopped.")
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="Seconds to wait when nothing is due (with --loop).",
        )
        parser.add_argument("--limit", type=int, default=100, help="Deliveries per pass.")

    def handle(self, *args, loop=False, interval=1.0, limit=100, **options):
        while True:
            report = deliveries_send(limit=limit)
            if report.sent or not loop:
                self.stdout.write(
                    f"sent {report.sent}: {report.delivered} delivered, {report.failed} to "
                    f"retry, {report.dead} dead-lettered"
                )
            if not loop:
                return
            if report.sent < limit:
                time.sleep(interval)
