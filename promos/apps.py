from django.apps import AppConfig


class PromosConfig(AppConfig):
    """Discounts: coupon batches and their codes, promotion campaigns, the ledger of
    what each order reserved and used. Prices and reservations only; orders calls it
    when an order is created, paid, cancelled, timed out or refunded."""

    name = "promos"
    verbose_name = "Discounts"
