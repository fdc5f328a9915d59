"""Log records as text or as one JSON object per line, with secrets and card numbers
taken out before any handler writes them.

``logging_config()`` builds the ``LOGGING`` setting from ``LOG_FORMAT`` and
``LOG_LEVEL``; ``deploy/gunicorn.conf.py`` uses the same formatter and filter for
gunicorn's own error and access logs. The filter sits on the handlers, so it sees what
every logger writes, the SDKs' (``pingpp``, ``stripe``, ``urllib3``) included.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDACTED = "[REDACTED]"

# What a LogRecord carries of its own; everything else on it came through ``extra``.
RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}

# The payment ids the text format appends to a line, in this order.
CONTEXT_FIELDS = ("order_bid", "attempt_bid", "refund_bid", "channel", "event_id")

# Settings whose values never reach a log line; the PEM private key also by its lines.
SECRET_SETTINGS = (
    "SECRET_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "PINGXX_SECRET_KEY",
    "PINGXX_PRIVATE_KEY",
    "PLATFORM_JWT_SECRET",
    "PLATFORM_WEBHOOK_SECRET",
)
MIN_SECRET_LENGTH = 6

PATTERNS = (
    # PEM private keys, whole or cut off at the end of the text.
    re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
        re.DOTALL,
    ),
    # Stripe and Ping++ secret and restricted keys, Stripe webhook signing secrets.
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{6,}"),
    re.compile(r"\bwhsec_[0-9A-Za-z+/=]{6,}"),
    # Partner API keys, and JWTs (the platform's user tokens).
    re.compile(r"\bpsk_[0-9A-Za-z_-]{6,}"),
    re.compile(r"\beyJ[0-9A-Za-z_-]+\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]*"),
    # Client secrets: pi_..._secret_..., seti_..._secret_..., cs_test_..._secret_...
    re.compile(r"\b[a-z]{2,5}_[0-9A-Za-z_]+?_secret_[0-9A-Za-z]+"),
)
# 13 to 19 digits, possibly grouped by spaces or dashes, not part of a longer word.
PAN_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _redact_pan(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return REDACTED if 13 <= len(digits) <= 19 and _luhn_valid(digits) else match.group()


@lru_cache(maxsize=8)
def _read_key_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


@lru_cache(maxsize=32)
def _variants(value: str) -> tuple[str, ...]:
    """A secret and, for a PEM key, each line of it long enough to be key material."""
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH:
        return ()
    found = [value]
    if "-----BEGIN" in value:
        found += [line.strip() for line in value.splitlines() if len(line.strip()) >= 16]
    return tuple(found)


def configured_secrets() -> tuple[str, ...]:
    """The secret values of the current settings, longest first (none before setup)."""
    from django.conf import settings

    if not settings.configured:
        return ()
    values: list[str] = []
    for name in SECRET_SETTINGS:
        value = getattr(settings, name, "")
        if isinstance(value, str) and value:
            values += _variants(value)
    path = getattr(settings, "PINGXX_PRIVATE_KEY_PATH", "")
    if isinstance(path, str) and path:
        values += _variants(_read_key_file(path))
    for database in getattr(settings, "DATABASES", {}).values():
        password = database.get("PASSWORD")
        if isinstance(password, str) and password:
            values += _variants(password)
    return tuple(sorted(set(values), key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...] | None = None) -> str:
    """``text`` without configured secret values, key-shaped tokens and card numbers."""
    if not text:
        return text
    for secret in configured_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in PATTERNS:
        text = pattern.sub(REDACTED, text)
    return PAN_CANDIDATE.sub(_redact_pan, text)


def _redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    """Strings redacted; dicts, lists and tuples copied with theirs redacted."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", errors="replace"), secrets)
    if isinstance(value, Mapping):
        return {key: _redact_value(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(item, secrets) for item in value]
    return value


class RedactSecrets(logging.Filter):
    """Take secrets out of a record's message, arguments, traceback and extra fields.

    Attached to handlers, so it also covers the records of other libraries' loggers.
    It never drops a record: if redacting fails, the message is withheld instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            secrets = configured_secrets()
            message = record.getMessage()
            cleaned = redact(message, secrets)
            # gunicorn's access log keeps its atoms (a mapping) as arguments: they
            # stay arguments when nothing had to be taken out of the line they make.
            if cleaned != message or not isinstance(record.args, Mapping):
                record.msg, record.args = cleaned, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text, secrets)
            if record.stack_info:
                record.stack_info = redact(record.stack_info, secrets)
            for key, value in list(record.__dict__.items()):
                if key not in RECORD_ATTRIBUTES:
                    setattr(record, key, _redact_value(value, secrets))
        except Exception:  # a log line is never worth a crash, nor a leak
            record.msg, record.args = "log message withheld: redaction failed", None
            record.exc_info = record.exc_text = record.stack_info = None
        return True


class DropSignatureFailureTraceback(logging.Filter):
    """dj-stripe logs every Stripe signature that does not verify as an ERROR with a
    traceback; anyone can send those. The service records each refusal itself, bounded
    (the webhook inbox) with one warning line, so this record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Failed to verify header"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in RECORD_ATTRIBUTES and not key.startswith("_")
    }


# gunicorn's access log atoms, under readable names.
ACCESS_ATOMS = {
    "h": "remote_addr",
    "m": "method",
    "U": "path",
    "q": "query",
    "H": "protocol",
    "s": "status",
    "B": "response_bytes",
    "M": "duration_ms",
    "f": "referer",
    "a": "user_agent",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            for atom, name in ACCESS_ATOMS.items():
                value = record.args.get(atom, "-")
                if value not in ("-", ""):
                    entry[name] = int(value) if name in ("status", "duration_ms") else value
        for key, value in extra_fields(record).items():
            if not (key in CONTEXT_FIELDS and value in ("", None)):
                entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=self._fallback, ensure_ascii=False)

    @staticmethod
    def _fallback(value: Any) -> str:
        # Objects (a request, an exception) are written as text, redacted like the rest.
        return redact(str(value))


class TextFormatter(logging.Formatter):
    """The classic line, with the payment ids of the record appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        ids = [
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, "")
        ]
        return f"{line} [{' '.join(ids)}]" if ids else line


def formatter_class(log_format: str) -> str:
    if log_format not in FORMATS:
        raise ImproperlyConfigured(
            f"LOG_FORMAT: {log_format!r} is not one of {', '.join(FORMATS)}."
        )
    return f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"


def check_level(level: str) -> str:
    level = level.upper()
    if level not in LEVELS:
        raise ImproperlyConfigured(f"LOG_LEVEL: {level!r} is not one of {', '.join(LEVELS)}.")
    return level


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING setting: every record to stderr through the redacting filter.

    Django's own loggers propagate to it (no e-mail to ADMINS, no second console
    handler in DEBUG); runserver's request lines keep Django's format.
    """
    level = check_level(level)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact_secrets": {"()": f"{__name__}.RedactSecrets"},
            "drop_signature_failure_traceback": {"()": f"{__name__}.DropSignatureFailureTraceback"},
        },
        "formatters": {"default": {"()": formatter_class(log_format)}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["redact_secrets"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": [], "level": level, "propagate": True},
            "djstripe.models.base": {"filters": ["drop_signature_failure_traceback"]},
        },
    }


def gunicorn_logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error log to stderr, access log to stdout,
    both formatted and redacted like the service's own records."""
    level = check_level(level)
    config = logging_config(log_format=log_format, level=level)
    config["handlers"]["access"] = {
        **config["handlers"]["console"],
        "stream": "ext://sys.stdout",
    }
    config["loggers"] = {
        "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    }
    return config
