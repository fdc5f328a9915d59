"""Readers of provider JSON that every provider package shares.

Provider objects arrive as dicts (JSON, or an SDK's objects made plain); these read
typed values from them and raise ``Malformed`` when a required one is missing, which
each provider turns into its own ``ProviderBadResponse`` or ``WebhookPayloadInvalid``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from payments.providers.base import ProviderBadResponse


class Malformed(ValueError):
    """An object from a provider that lacks what a provider module reads from it."""


T = TypeVar("T")


def answer_reader(name: str, channel: str) -> Callable[..., Any]:
    """The provider's ``read_answer(build, obj, **kwargs)``: ``build(obj, **kwargs)``,
    where an object lacking what it reads is a bad response of the provider ``name``."""

    def read_answer(build: Callable[..., T], obj: Any, **kwargs: Any) -> T:
        try:
            return build(obj, **kwargs)
        except Malformed as exc:
            raise ProviderBadResponse(
                f"{name} answered something unreadable: {exc}.", channel=channel
            ) from None

    return read_answer


def plain(value: Any, unwrap: Callable[[Any], Any] | None = None) -> Any:
    """An SDK object, or JSON, as plain JSON-safe values (dicts, lists, scalars).

    ``unwrap`` turns an SDK object that is not a Mapping (Stripe's) into plain data;
    what it returns is made plain in turn.
    """
    if unwrap is not None:
        value = unwrap(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item, unwrap) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item, unwrap) for item in value]
    return value


def text(obj: Mapping[str, Any], key: str) -> str:
    """``obj[key]`` when it is a string, else ""."""
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def integer(obj: Mapping[str, Any], key: str) -> int:
    """``obj[key]``, which must be an integer (not a bool)."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{obj.get('object') or 'object'} has no integer {key!r}")
    return value


def currency(obj: Mapping[str, Any]) -> str:
    """The object's currency, lower case; required."""
    code = text(obj, "currency")
    if not code:
        raise Malformed(f"{obj.get('object') or 'object'} has no currency")
    return code.lower()


def identifier(obj: Any, kind: str) -> str:
    """The id of an object whose ``object`` is ``kind``; both required."""
    if not isinstance(obj, Mapping) or obj.get("object") != kind:
        raise Malformed(f"expected a {kind} object")
    value = obj.get("id")
    if not isinstance(value, str) or not value:
        raise Malformed(f"{kind} has no id")
    return value


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def livemode(obj: Mapping[str, Any]) -> bool | None:
    value = obj.get("livemode")
    return value if isinstance(value, bool) else None


def timestamp(obj: Mapping[str, Any] | None, key: str) -> datetime | None:
    """A positive Unix time at ``key`` as an aware datetime; None when absent."""
    value = (obj or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def envelope(event: Any) -> tuple[str, str, dict[str, Any]]:
    """(id, type, data.object) of a webhook event, as Ping++ and Stripe shape them."""
    if not isinstance(event, dict):
        raise Malformed("not an object")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise Malformed("no id or type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise Malformed("no data.object")
    return event_id, event_type, obj


def header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever the mapping's case (or WSGI ``HTTP_`` form)."""
    wanted = name.lower()
    for key, value in headers.items():
        normal = str(key).lower().replace("_", "-")
        if normal in (wanted, f"http-{wanted}"):
            return str(value or "")
    return ""
