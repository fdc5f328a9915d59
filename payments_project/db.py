"""Model field and index types, and the legacy columns' conventions, shared by the apps
that adopt the legacy tables."""

import ast
import json
import uuid
from typing import Any

from django.db import models


def new_bid() -> str:
    """A new business identifier: 32 lower-case hex characters."""
    return uuid.uuid4().hex


class Deleted(models.IntegerChoices):
    """The legacy soft-delete flag."""

    ACTIVE = 0, "active"
    DELETED = 1, "deleted"


class LegacyDateTimeField(models.DateTimeField):
    """DATETIME without fractional seconds, as the legacy tables declare it.

    Django would create DATETIME(6) on MySQL; the adopted tables must keep their type.
    """

    def db_type(self, connection):
        if connection.vendor == "mysql":
            return "datetime"
        return super().db_type(connection)


class LegacyIndex(models.Index):
    """An index whose name may be as long as MySQL allows (64), like the legacy ones.

    Django caps index names at 30 characters for Oracle; the adopted tables already
    have longer names (ix_order_pingxx_orders_pingxx_order_bid) that must be kept.
    """

    max_name_length = 64


def parse_legacy_object(text: str) -> Any:
    """A raw object stored as text: JSON, or the Python repr older code wrote.

    Returns None when the text is neither; never evaluates code.
    """
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


class LegacyJSONField(models.TextField):
    """A JSON value kept as text in a ``TEXT NOT NULL`` column, as the platform keeps
    its raw provider objects and metadata.

    Reads JSON (or the Python repr older code wrote) into Python values; an empty
    column reads as ``{}`` and text that is neither is returned as it is, so that it
    is kept if the row is saved. Writes JSON; ``None`` is written as ``{}``.
    """

    def db_type(self, connection):
        if connection.vendor == "mysql":
            return "text"
        return super().db_type(connection)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return {}
        parsed = parse_legacy_object(value)
        return value if parsed is None else parsed

    def to_python(self, value):
        if isinstance(value, str):
            return self.from_db_value(value, None, None)
        return {} if value is None else value

    def get_prep_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps({} if value is None else value, default=str)

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))
