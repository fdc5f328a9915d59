"""A real HTTP server on loopback, answering in a thread: the base of the provider
doubles (tests/payments/pingxx_double.py, tests/payments/stripe_fakes.py).

Subclasses implement ``_handle(handler, method)``; ``delay_next`` holds the next answer
back (subclasses read and reset ``_delay`` under ``_lock``).
"""

from __future__ import annotations

import functools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.owner._handle(self, "GET")  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        self.server.owner._handle(self, "POST")  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    def __init__(self) -> None:
        self._delay = 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, f"start() the {type(self).__name__} first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self._server.daemon_threads = True
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        threading.Thread(target=serve, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()  # returns once serve_forever has
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def delay_next(self, seconds: float) -> None:
        """The next request is answered only after ``seconds``."""
        with self._lock:
            self._delay = seconds

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        raise NotImplementedError
