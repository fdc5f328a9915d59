from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments_project.config import BASE_DIR, render_env_example


class Command(BaseCommand):
    help = "Write .env.example from the declaration of environment variables."
    requires_system_checks = []  # it documents the configuration; it need not be valid

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            default=str(BASE_DIR / ".env.example"),
            help="File to write; '-' for standard output. Default: .env.example.",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; exit with an error when the file is not up to date.",
        )

    def handle(self, *args, output, check, **options):
        text = render_env_example()
        if output == "-":
            self.stdout.write(text, ending="")
            return
        path = Path(output)
        if check:
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current != text:
                raise CommandError(f"{path} is stale: run `python manage.py generate_env_example`.")
            self.stdout.write(f"{path} is up to date.")
            return
        path.write_text(text, encoding="utf-8")
        self.stdout.write(f"Wrote {path}.")
