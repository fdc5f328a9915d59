"""Delete old webhook inbox rows that nothing needs any more.

    manage.py prune_webhook_events --older-than DAYS [--delete] [--batch-size N]

Rows received more than DAYS days ago whose status is applied, ignored or rejected go;
received and failed rows are never deleted, whatever their age (they still have to be
applied). A dry run by default: it prints what would be deleted, per status and
channel. ``--delete`` deletes, N primary keys per transaction, so that it never holds a
lock for long.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payments import services
from payments.models import InboxStatus, WebhookEvent


class Command(BaseCommand):
    help = (
        "Delete webhook inbox rows older than --older-than days that are applied, ignored or "
        "rejected (never received or failed ones). A dry run unless --delete is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            required=True,
            metavar="DAYS",
            help="Rows received more than DAYS days ago (at least 1).",
        )
        parser.add_argument(
            "--delete", action="store_true", help="Delete them (without it, only count them)."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Rows deleted per transaction (default 1000).",
        )

    def handle(self, *args, older_than: int, delete: bool, batch_size: int, **options) -> None:
        if older_than < 1:
            raise CommandError("--older-than must be >= 1 (days).")
        if batch_size < 1:
            raise CommandError("--batch-size must be >= 1.")
        before = timezone.now() - timedelta(days=older_than)
        self.stdout.write(
            f"Inbox rows received before {before:%Y-%m-%d %H:%M:%S %Z} "
            f"(more than {older_than} days ago), applied, ignored or rejected:"
        )
        if delete:
            counts = services.webhook_events_prune(before=before, batch_size=batch_size)
            label = "deleted"
        else:
            counts = services.webhook_events_count(services.webhook_events_prunable(before=before))
            label = "would delete"
        self.stdout.write(table(counts, label))
        if not delete:
            self.stdout.write("Dry run: nothing was deleted. Add --delete to delete them.")
        kept = WebhookEvent.objects.filter(
            status__in=(InboxStatus.RECEIVED, InboxStatus.FAILED), received_at__lt=before
        ).count()
        self.stdout.write(
            f"Kept: {kept} received or failed rows as old (never pruned: they still have to "
            "be applied)."
        )


def table(counts: Counter[tuple[str, str]], label: str) -> str:
    lines = [("status", "channel", label)]
    lines += [(status, channel, str(n)) for (status, channel), n in sorted(counts.items())]
    lines.append(("total", "", str(sum(counts.values()))))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return "\n".join(
        f"{status.ljust(widths[0])}  {channel.ljust(widths[1])}  {n.rjust(widths[2])}".rstrip()
        for status, channel, n in lines
    )
