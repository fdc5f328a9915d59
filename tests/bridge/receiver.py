"""A loopback receiver of outbound events, as the platform would run one: it checks
each POST's signature with ``bridge.signing.verify_signature`` and keeps the events it
accepted; ``fail_next(n)`` answers the next n POSTs 503, ``down()`` refuses all."""

from __future__ import annotations

import json
import threading
import time

from bridge.signing import SignatureInvalid, verify_signature
from tests.loopback import LoopbackServer


class EventReceiver(LoopbackServer):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.events: list[dict] = []  # accepted, in the order received
        self.posts = 0
        self.refused = 0
        self.bad_signatures = 0
        self.accepted_at: list[float] = []
        self._failing = 0
        self._down = False
        self.trickle = 0.0  # seconds between the bytes of a long answer body, when set
        self._mutex = threading.Lock()

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks/payments"

    def fail_next(self, count: int) -> None:
        with self._mutex:
            self._failing = count

    def down(self, is_down: bool = True) -> None:
        with self._mutex:
            self._down = is_down

    def _handle(self, handler, method: str) -> None:
        length = int(handler.headers.get("Content-Length", 0))
        body = handler.rfile.read(length)
        with self._mutex:
            self.posts += 1
            try:
                verify_signature(body, handler.headers.get("X-Signature", ""), self.secret)
            except SignatureInvalid:
                self.bad_signatures += 1
                status = 400
            else:
                if self._down or self._failing:
                    self._failing = max(self._failing - 1, 0)
                    self.refused += 1
                    status = 503
                else:
                    self.events.append(json.loads(body))
                    self.accepted_at.append(time.monotonic())
                    status = 200
        if self.trickle:
            answer = b"x" * 100_000
            handler.send_response(status)
            handler.send_header("Content-Length", str(len(answer)))
            handler.end_headers()
            for start in range(0, len(answer), 1000):
                try:
                    handler.wfile.write(answer[start : start + 1000])
                    handler.wfile.flush()
                except OSError:  # the sender stopped reading
                    return
                time.sleep(self.trickle)
            return
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]
