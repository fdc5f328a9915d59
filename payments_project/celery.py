"""The Celery app: background work and its schedules (beat).

With ``CELERY_BROKER_URL`` set (Redis by default in production, RabbitMQ by
``amqp://``), tasks go to workers and beat runs the schedules of
``settings.CELERY_BEAT_SCHEDULE``. Without it (the embedded default), tasks run in the
calling process, after the transaction that asked for them commits: ``scripts/serve``
and SQLite need no broker, and cron may still run the management commands.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "payments_project.settings")

app = Celery("payments_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app's tasks.py, found by name: the kernel imports no app.
app.autodiscover_tasks(["orders", "payments"])
