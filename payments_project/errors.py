"""The base of every error this service raises on purpose.

Each error carries a stable machine-readable ``code`` and the HTTP status the API
answers with, so callers branch on the code, never on the message.
"""

from __future__ import annotations


class ServiceError(Exception):
    code = "service_error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(ServiceError):
    code = "invalid_input"
    http_status = 400
