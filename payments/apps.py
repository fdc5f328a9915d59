from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payment attempts, by channel"

    def ready(self) -> None:
        from payments import checks  # noqa: F401  (registers its system checks)
        from payments_project import checks as settings_checks  # noqa: F401  (and the kernel's)
