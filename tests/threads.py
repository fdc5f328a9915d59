"""Run a function in many threads at once, for the row-lock tests on MariaDB."""

import threading

from django.db import connection


def run_together(target, count: int = 20, timeout: float = 120) -> list:
    """``target(i)`` in ``count`` threads released at the same moment; the results, or
    the exception each raised, by thread index. Each thread closes its connection."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results
