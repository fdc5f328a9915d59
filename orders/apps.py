from django.apps import AppConfig
from django.core.management.base import CommandError
from django.db import connections
from django.db.models.signals import post_migrate, pre_migrate


def refuse_unknown_schema(sender, *, using, plan=None, **kwargs) -> None:
    """Before ``migrate`` changes anything (Django's own tables included): a database
    whose order tables are of neither known version is refused with the differences."""
    from payments_project import adoption

    adopting = any(
        migration.app_label in ("orders", "payments")
        and migration.name == "0001_initial"
        and not backwards
        for migration, backwards in plan or ()
    )
    if not adopting or adoption.recorded(connections[using]):
        return
    try:
        adoption.detect(connections[using])
    except adoption.UnknownSchema as exc:
        raise CommandError(str(exc)) from None


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        pre_migrate.connect(refuse_unknown_schema, sender=self)
        # The staff groups, once every app's permissions exist (the last app migrated).
        post_migrate.connect(_ensure_staff_groups, dispatch_uid="orders.staff_groups")


def _ensure_staff_groups(sender, *, using, apps=None, **kwargs) -> None:
    from django.apps import apps as global_apps

    if sender.label != list(global_apps.get_app_configs())[-1].label:
        return
    from orders import staff_groups

    staff_groups.ensure()
