"""A demo catalogue and an admin login, for trying the service out. Idempotent."""

import secrets
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from orders.models import Product

DEMO_PRODUCTS = (
    # product_bid, name, price, currency
    ("demo0000000000000000000000000001", "Python for Data Analysis", Decimal("199.00"), "cny"),
    ("demo0000000000000000000000000002", "Django in Production", Decimal("299.00"), "cny"),
    ("demo0000000000000000000000000003", "Machine Learning Basics", Decimal("49.90"), "usd"),
    ("demo0000000000000000000000000004", "Japanese for Engineers", Decimal("4800"), "jpy"),
    ("demo0000000000000000000000000005", "Free Orientation Course", Decimal("0.00"), "cny"),
)


class Command(BaseCommand):
    help = "Create the demo product catalogue and an admin login, and print the login."

    def add_arguments(self, parser):
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument(
            "--admin-password-file",
            required=True,
            help="Keeps the generated admin password, so every run prints the same login.",
        )

    @transaction.atomic
    def handle(self, *args, admin_username, admin_password_file, **options):
        for product_bid, name, price, currency in DEMO_PRODUCTS:
            Product.objects.update_or_create(
                product_bid=product_bid,
                defaults={"name": name, "price": price, "currency": currency, "active": True},
            )
        password_file = Path(admin_password_file)
        if password_file.exists():
            password = password_file.read_text(encoding="utf-8").strip()
        else:
            password = secrets.token_urlsafe(12)
            password_file.touch(mode=0o600)
            password_file.write_text(password + "\n", encoding="utf-8")
        user, _ = get_user_model().objects.get_or_create(
            username=admin_username, defaults={"email": f"{admin_username}@localhost"}
        )
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            f"Demo catalogue: {len(DEMO_PRODUCTS)} products.\n"
            f"Admin login: username {admin_username!r}, password {password!r} "
            f"(kept in {password_file})."
        )
