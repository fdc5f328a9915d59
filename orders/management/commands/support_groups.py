"""Create the *support* and *support lead* groups, or reset them to their permissions."""

from django.core.management.base import BaseCommand

from orders import staff_groups


class Command(BaseCommand):
    help = (
        "Create the 'support' and 'support lead' staff groups, or put them back to their "
        "permissions (orders/staff_groups.py says what each may do)."
    )

    def handle(self, *args, **options) -> None:
        for group in staff_groups.reset():
            self.stdout.write(f"{group.name}: {group.permissions.count()} permissions")
