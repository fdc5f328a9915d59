"""The kernel: settings, configuration, money, and the Celery app (loaded with Django so
that tasks are registered when a web process or worker starts)."""

from payments_project.celery import app as celery_app

__all__ = ("celery_app",)
