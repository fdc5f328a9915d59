"""Time out unpaid orders older than PAY_ORDER_EXPIRE_SECONDS.

    manage.py expire_orders [--limit N] [--dry-run]

Each order is claimed with SKIP LOCKED in its own short transaction, so runs on several
machines time out disjoint orders. Exits non-zero when an order could not be timed out.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orders import services
from orders.management.commands.reconcile_payments import Progress, report_and_exit


class Command(BaseCommand):
    help = (
        "Time out unpaid orders older than PAY_ORDER_EXPIRE_SECONDS. Exits 1 when some could "
        "not be timed out."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--limit", type=int, default=1000, help="At most N orders.")
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be timed out; change nothing."
        )

    def handle(self, *args, limit: int, dry_run: bool, **options) -> None:
        if limit < 1:
            raise CommandError("--limit must be >= 1.")
        progress = Progress(
            self.stdout, dry_run=dry_run, settled="timed out", would="would time out"
        )
        try:
            report = services.orders_expire_run(limit=limit, dry_run=dry_run, on_row=progress)
        finally:
            progress.finish()
        report_and_exit(self, report, settled="timed out", would="would time out", what="orders")
