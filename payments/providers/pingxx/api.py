"""The Ping++ API: the only module that calls the pingpp SDK.

The SDK keeps its configuration in module globals; ``configure`` sets them all (the
provider does, once, when it is built). Each call answers plain JSON (dicts, lists,
scalars) or raises a ProviderError subclass (see ``errors``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import certifi
import pingpp
from django.core.exceptions import ImproperlyConfigured
from pingpp import http_client as pingpp_http_client

from payments.providers.base import ProviderBadResponse
from payments.providers.payloads import plain
from payments.providers.pingxx.errors import CHANNEL, SdkError, translate

# Paging through a charge's refunds: Ping++ allows at most 100 a page.
REFUND_PAGE_SIZE = 100
REFUND_MAX_PAGES = 50


def require_requests_client() -> None:
    """Only the SDK's requests client passes a CA bundle and a connect timeout on:
    urlfetch and urllib ignore both, pycurl would not take a (connect, read) pair."""
    if pingpp_http_client.urlfetch is not None or pingpp_http_client.requests is None:
        raise ImproperlyConfigured(
            "The Ping++ SDK must send through the requests library, the only one "
            "of its clients that honours the CA bundle and both timeouts."
        )


def configure(
    *,
    api_base: str,
    api_key: str,
    app_id: str,
    private_key: str,
    connect_timeout: float,
    read_timeout: float,
    max_network_retries: int,
) -> None:
    """Set the SDK's globals: where and as whom it sends, and how it waits and retries."""
    pingpp.api_base = api_base.rstrip("/")
    pingpp.api_key = api_key or None
    pingpp.app_id = app_id or None
    pingpp.private_key = private_key or None
    pingpp.private_key_path = None
    pingpp.verify_ssl_certs = True
    pingpp.ca_bundle = certifi.where()
    pingpp.proxy = None
    pingpp.connect_timeout = connect_timeout
    pingpp.timeout = (connect_timeout, read_timeout)
    pingpp.max_network_retries = max_network_retries
    pingpp.log = None  # no console logging of request bodies


def call(operation: str, function: Callable[..., Any], *args: Any, **params: Any) -> Any:
    """Call the SDK; its errors become project errors, its result plain data."""
    try:
        result = function(*args, **params)
    except SdkError as exc:
        raise translate(exc, operation) from exc
    return plain(result)


# ---- charges ----


def create_charge(**params: Any) -> Any:
    return call("create_charge", pingpp.Charge.create, **params)


def retrieve_charge(charge_id: str) -> Any:
    return call("retrieve_charge", pingpp.Charge.retrieve, charge_id)


def reverse_charge(charge_id: str) -> Any:
    return call("reverse_charge", pingpp.Charge.reverse, charge_id)


# ---- refunds ----


def create_refund(charge_id: str, **params: Any) -> Any:
    return call("create_refund", pingpp.Charge.refund, charge_id, **params)


def retrieve_refund(charge_id: str, refund_id: str) -> Any:
    return call("retrieve_refund", pingpp.Charge.retrieve_refund, charge_id, refund_id)


def refunds(charge_id: str) -> Iterator[Any]:
    """Every refund of a charge, page after page (each read when the last is used up).

    Raises rather than stop early when the list cannot be read to its end.
    """
    params: dict[str, Any] = {"limit": REFUND_PAGE_SIZE}
    for _ in range(REFUND_MAX_PAGES):
        page = call("list_refunds", pingpp.Charge.list_refunds, charge_id, **params)
        data = page.get("data") if page.get("object") == "list" else None
        if not isinstance(data, list):
            raise ProviderBadResponse(
                "Ping++ answered a refund list without data.",
                channel=CHANNEL,
                operation="list_refunds",
            )
        yield from data
        last_id = data[-1].get("id") if data and isinstance(data[-1], Mapping) else None
        if page.get("has_more") is not True:
            return
        if not isinstance(last_id, str) or not last_id:
            raise ProviderBadResponse(
                "Ping++ announced more refunds but gave no id to page from.",
                channel=CHANNEL,
                operation="list_refunds",
            )
        params["starting_after"] = last_id
    raise ProviderBadResponse(
        f"Charge {charge_id} has more than {REFUND_PAGE_SIZE * REFUND_MAX_PAGES} refunds.",
        channel=CHANNEL,
        operation="list_refunds",
    )
