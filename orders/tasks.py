"""The periodic work of orders, as Celery tasks (beat runs them; see CELERY_BEAT_SCHEDULE).

Each is safe with several workers and with two beats by mistake: reconciliation claims
its rows with SKIP LOCKED and a lease (``CLAIM_LEASE``), expiry claims each order with
SKIP LOCKED, so overlapping runs take disjoint rows. The management commands stay for
manual runs and cron.
"""

from __future__ import annotations

from celery import shared_task

from orders import services


@shared_task(name="orders.reconcile_payments", ignore_result=True)
def reconcile_payments(*, older_than_seconds: int = 300, limit: int = 500) -> dict:
    report = services.payments_reconcile(
        older_than_seconds=older_than_seconds, limit=limit, claim_for=services.CLAIM_LEASE
    )
    return {
        "checked": report.checked,
        "settled": report.settled,
        "unchanged": report.unchanged,
        "errors": len(report.errors),
    }


@shared_task(name="orders.expire_orders", ignore_result=True)
def expire_orders(*, limit: int = 1000) -> dict:
    report = services.orders_expire_run(limit=limit)
    return {"expired": report.expired, "skipped": report.skipped, "errors": len(report.errors)}
