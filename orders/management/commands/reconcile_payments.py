"""Settle what providers never reported: pending attempts, refunds and failed inbox events.

    manage.py reconcile_payments [--older-than SECONDS] [--limit N] [--dry-run]

Safe to run from several machines at once: each run claims its rows first (SKIP LOCKED,
then a stamp other runs respect for ``CLAIM_LEASE``), and never holds a lock while a
provider is called. Exits non-zero when a row could not be settled.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from orders import services

COLUMNS = ("checked", "settled", "unchanged", "errors")
OUTCOME_COLUMN = {"settled": "settled", "unchanged": "unchanged", "error": "errors"}


class Progress:
    """A carriage-return progress bar on a terminal, one plain line per row otherwise."""

    WIDTH = 30

    def __init__(self, stdout: OutputWrapper, *, dry_run: bool, settled: str, would: str) -> None:
        self.stdout = stdout
        self.tty = stdout.isatty()
        self.settled = would if dry_run else settled
        self.drawn = False

    def __call__(self, checked: services.Checked, done: int, total: int) -> None:
        if self.tty:
            filled = self.WIDTH * done // total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            self.stdout.write(f"\r[{bar}] {done}/{total} {checked.kind:<12}", ending="")
            self.stdout.flush()
            self.drawn = True
            return
        outcome = checked.outcome
        if outcome == "settled":
            outcome = self.settled
        detail = f": {checked.detail}" if checked.detail else ""
        self.stdout.write(f"{outcome} {checked.what} [{checked.channel}]{detail}")

    def finish(self) -> None:
        if self.drawn:
            self.stdout.write("")


def summary_table(rows: list[services.Checked], *, settled_label: str) -> str:
    """Checked / settled / unchanged / errors: in all, per kind and per channel."""
    headers = ("", *(settled_label if c == "settled" else c for c in COLUMNS))
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        column = OUTCOME_COLUMN[row.outcome]
        for key in ("total", f"kind: {row.kind}", f"channel: {row.channel}"):
            counts[key]["checked"] += 1
            counts[key][column] += 1
    order = ["total"]
    order += sorted(k for k in counts if k.startswith("kind: "))
    order += sorted(k for k in counts if k.startswith("channel: "))
    lines = [headers] + [(key, *(str(counts[key][c]) for c in COLUMNS)) for key in order]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]

    def render(line) -> str:
        first = line[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(lines[0]), rule, *(render(line) for line in lines[1:])])


def report_and_exit(command: BaseCommand, report, *, settled: str, would: str, what: str) -> None:
    """Print the summary and the errors; CommandError (exit status 1) if there were any."""
    label = would if report.dry_run else settled
    if report.dry_run:
        command.stdout.write("Dry run: nothing was changed.")
    command.stdout.write(summary_table(report.rows, settled_label=label))
    for error in report.errors:
        command.stderr.write(f"error: {error}")
    if report.errors:
        raise CommandError(f"{len(report.errors)} {what} could not be settled (see above).")


class Command(BaseCommand):
    help = (
        "Fetch every pending payment attempt and refund older than a threshold (and failed "
        "webhook inbox events) from its provider and settle it. Exits 1 when some could not be "
        "settled."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=300,
            metavar="SECONDS",
            help="Only rows created at least this long ago (default 300).",
        )
        parser.add_argument(
            "--limit", type=int, default=500, help="At most N rows of each kind and channel."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Ask the providers and report what would change; change nothing.",
        )

    def handle(self, *args, older_than: int, limit: int, dry_run: bool, **options) -> None:
        if older_than < 0 or limit < 1:
            raise CommandError("--older-than must be >= 0 and --limit >= 1.")
        progress = Progress(self.stdout, dry_run=dry_run, settled="settled", would="would settle")
        try:
            report = services.payments_reconcile(
                older_than_seconds=older_than,
                limit=limit,
                dry_run=dry_run,
                claim_for=services.CLAIM_LEASE,
                on_row=progress,
            )
        finally:
            progress.finish()
        report_and_exit(
            self,
            report,
            settled="settled",
            would="would settle",
            what="disagreements with a provider",
        )
