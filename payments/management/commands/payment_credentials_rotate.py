"""Rotate the key that seals creators' merchant credentials (payment integrations).

    manage.py payment_credentials_rotate            re-seal every integration under the
                                                    first key of PAYMENT_CREDENTIALS_KEYS
    manage.py payment_credentials_rotate --check    open every integration; exit status 1
                                                    if one cannot be opened, or is not yet
                                                    sealed under the first key
    manage.py payment_credentials_rotate --new-key  print a new key (reads nothing)

The rotation (docs/operations.md): put the new key first, deploy, run this, run it with
``--check``, then remove the old key and deploy again. System checks do not stop it: it
is the tool that mends what config.E023 to E025 report.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from payments import credentials, integrations
from payments.merchants import PaymentIntegration


class Command(BaseCommand):
    help = (
        "Re-seal every payment integration's credentials under the first key of "
        "PAYMENT_CREDENTIALS_KEYS; --check opens them all, --new-key prints a new key."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--new-key",
            action="store_true",
            help="Print a new key for PAYMENT_CREDENTIALS_KEYS and exit (nothing is read).",
        )
        mode.add_argument(
            "--check",
            action="store_true",
            help=(
                "Open every integration's credentials with the current keys and say which "
                "cannot be opened or are sealed under an older key (exit status 1 if any)."
            ),
        )

    def handle(self, *args, new_key: bool, check: bool, **options) -> None:
        if new_key:
            self.stdout.write(credentials.new_key())
            return
        if not any(settings.PAYMENT_CREDENTIALS_KEYS):
            raise CommandError(
                "PAYMENT_CREDENTIALS_KEYS is not set: make a key with --new-key and set it."
            )
        problems = credentials.key_problems()
        if problems:
            raise CommandError(" ".join(problems))
        if check:
            self.check_sealed()
            return
        try:
            count = integrations.integrations_reseal()
        except credentials.CredentialsLocked as exc:
            raise CommandError(
                f"{exc.message} The integrations before it were re-sealed; --check lists "
                "those that cannot be opened."
            ) from None
        self.stdout.write(
            f"Re-sealed {count} payment integration(s) under the first key of "
            "PAYMENT_CREDENTIALS_KEYS."
        )

    def check_sealed(self) -> None:
        rows = list(PaymentIntegration.objects.exclude(secret_sealed="").order_by("id"))
        locked, older = [], []
        for row in rows:
            try:
                credentials.unseal(row.secret_sealed)
            except credentials.CredentialsLocked:
                locked.append(row)
                self.stdout.write(f"cannot be opened: {describe(row)}")
                continue
            if not credentials.sealed_under_first_key(row.secret_sealed):
                older.append(row)
                self.stdout.write(f"sealed under an older key: {describe(row)}")
        opened = len(rows) - len(locked)
        self.stdout.write(
            f"{opened} of {len(rows)} payment integration(s) open with "
            f"PAYMENT_CREDENTIALS_KEYS; {opened - len(older)} under its first key."
        )
        if locked:
            raise CommandError(
                f"{len(locked)} payment integration(s) cannot be opened: put back the key "
                "that sealed them, or enter their credentials again in the admin."
            )
        if older:
            raise CommandError(
                f"{len(older)} payment integration(s) are sealed under an older key: run "
                "payment_credentials_rotate before removing it."
            )


def describe(row: PaymentIntegration) -> str:
    state = "active" if row.active else "inactive"
    return f"{row.integration_bid} ({row.channel}, creator {row.creator_bid}, {state})"
