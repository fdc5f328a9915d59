"""The Celery app: background work and its schedules (beat).

With ``CELERY_BROKER_URL`` set (Redis by default in production, RabbitMQ by
``amqp://``), tasks go to workers and beat runs the schedules of
``settings.CELERY_BEAT_SCHEDULE``. Without it (the embedded default), tasks run in the
calling process, after the transaction that asked for them commits: ``scripts/serve``
and SQLite need no broker, and cron may still run the management commands.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "payments_project.settings")


class _CelerySettings(Mapping):
    """Django's CELERY_* settings, read once when Celery first needs its configuration.

    Celery would otherwise look each key up through Django's lazy settings object, a
    few dozen times for every task sent (about half of a task's cost to send).
    """

    def __init__(self) -> None:
        self._values: dict | None = None

    def _read(self) -> dict:
        if self._values is None:
            from django.conf import settings

            self._values = {
                key: getattr(settings, key) for key in dir(settings) if key.startswith("CELERY_")
            }
        return self._values

    def __getitem__(self, key: str):
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


app = Celery("payments_project")
app.config_from_object(_CelerySettings(), namespace="CELERY")
# Each app's tasks.py, found by name: the kernel imports no app.
app.autodiscover_tasks(["orders", "payments", "bridge"])
