"""A bounded load generator: a fixed number of connections, each sending requests back
to back for a fixed time after a warm-up, every latency recorded.

Threads with ``http.client``, one connection each. Requests come from a callable that
returns the next one, or None when a pool of one-off requests (fresh events) is spent;
the run then ends there and its rate is taken over the time it lasted.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

# Every request comes through the TLS-terminating proxy of deploy/ (SECURE_PROXY_SSL_HEADER).
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Result:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, measured requests
    queries: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)  # every request, warm-up included
    first_error: str = ""
    ran_out_after: float | None = None  # seconds into the measured window

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """Milliseconds; nearest rank."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


def pool(requests: Iterable[Request]) -> Callable[[], Request | None]:
    """One-off requests, each sent once, from any number of threads."""
    iterator = iter(requests)
    lock = threading.Lock()

    def take() -> Request | None:
        with lock:
            return next(iterator, None)

    return take


def repeat(request: Request) -> Callable[[], Request]:
    return lambda: request


def cycle(requests: list[Request]) -> Callable[[], Request]:
    """The requests in turn, again and again."""
    counter = iter(range(1 << 62))
    lock = threading.Lock()

    def take() -> Request:
        with lock:
            return requests[next(counter) % len(requests)]

    return take


class _Worker(threading.Thread):
    def __init__(self, *, port: int, next_request, window: tuple[float, float], shared) -> None:
        super().__init__(daemon=True)
        self.port, self.next_request, self.window, self.shared = port, next_request, window, shared
        self.latencies: list[float] = []
        self.queries: list[int] = []
        self.statuses: Counter = Counter()
        self.first_error = ""

    def run(self) -> None:
        begin, end = self.window
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            while not self.shared["stop"].is_set() and time.perf_counter() < end:
                request = self.next_request()
                if request is None:
                    self.shared["ran_out"].append(time.perf_counter())
                    self.shared["stop"].set()
                    return
                started = time.perf_counter()
                status, queries, body = self._send(connection, request)
                finished = time.perf_counter()
                self.statuses[status] += 1
                if not 200 <= status < 300 and not self.first_error:
                    self.first_error = f"{status} {request.method} {request.path}: {body[:400]!r}"
                if begin <= started and finished <= end:
                    self.latencies.append(finished - started)
                    if queries is not None:
                        self.queries.append(queries)
        finally:
            connection.close()

    @staticmethod
    def _send(connection, request: Request) -> tuple[int, int | None, bytes]:
        headers = {**PROXY_HEADERS, **request.headers}
        if request.body or request.method == "POST":
            headers.setdefault("Content-Type", "application/json")
        try:
            connection.request(request.method, request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            return 0, None, repr(exc).encode()
        if response.will_close:
            connection.close()
        queries = response.getheader("X-Queries")
        return response.status, int(queries) if queries else None, body


def run(
    *,
    port: int,
    next_request: Callable[[], Request | None],
    connections: int,
    seconds: float,
    warmup: float,
) -> Result:
    """Load for ``warmup`` + ``seconds``; only requests inside the measured window count."""
    now = time.perf_counter()
    begin, end = now + warmup, now + warmup + seconds
    shared = {"stop": threading.Event(), "ran_out": []}
    workers = [
        _Worker(port=port, next_request=next_request, window=(begin, end), shared=shared)
        for _ in range(connections)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result = Result()
    for worker in workers:
        result.latencies += worker.latencies
        result.queries += worker.queries
        result.statuses.update(worker.statuses)
        result.first_error = result.first_error or worker.first_error
    result.requests = len(result.latencies)
    stopped = min(shared["ran_out"], default=end)
    result.seconds = max(0.0, min(stopped, end) - begin)
    if shared["ran_out"] and stopped < end:
        result.ran_out_after = result.seconds
    return result


def deliver(*, port: int, requests: list[Request], connections: int) -> Result:
    """Send each request once, ``connections`` at a time, all of them counted."""
    return run(
        port=port, next_request=pool(requests), connections=connections, seconds=3600, warmup=0
    )
