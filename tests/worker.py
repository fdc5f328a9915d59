"""A Celery worker for the tests: ``python -m tests.worker [celery worker options]``.

With ``CRASH_MARKER`` naming a file that does not exist yet, the worker's first payment
application dies half-way, after the order is written and before the commit, the way a
process killed by the kernel does (no rollback sent, no message acknowledged); it makes
the file, so that the worker started in its place applies normally.
"""

from __future__ import annotations

import os
import sys

import django


def crash_once(marker: str) -> None:
    from orders.sink import OrderPaymentSink

    original = OrderPaymentSink.payment_reported

    def payment_reported(self, **kwargs):
        reported = original(self, **kwargs)
        if not os.path.exists(marker):
            with open(marker, "x"):
                pass
            os._exit(70)
        return reported

    OrderPaymentSink.payment_reported = payment_reported


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    if os.environ.get("CRASH_MARKER"):
        crash_once(os.environ["CRASH_MARKER"])
    from payments_project.celery import app

    app.worker_main(["worker", *sys.argv[1:]])
