"""The WeChat Pay API v3: the only module that calls the wechatpayv3 SDK.

The SDK's ``Core`` signs each request with our merchant key and verifies the signature
of every 2xx answer. It is given WeChat Pay's platform certificate (its public key, and
its serial as the key id), so it never downloads certificates: a client is built with
no network call. Each call answers a JSON object or raises a ProviderError subclass
(see ``errors``).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

import requests
from wechatpayv3.core import Core
from wechatpayv3.type import RequestType

from payments.providers.base import ProviderRequestRefused
from payments.providers.wechatpay import errors
from payments.providers.wechatpay.config import (
    CHANNEL,
    WechatpayConfig,
    platform_certificate,
    private_key_pkcs8,
    public_key_pem,
    serial_hex,
)


class _Core(Core):
    """The SDK's client, restricted to the configured platform certificate.

    An answer signed under another serial is refused, never followed by a download of
    certificates (which would trust whatever the base URL serves).
    """

    def _update_certificates(self) -> None:
        return None


class WechatpayApi:
    """One merchant account's client, built on first use (once: instances are shared
    across threads, and the SDK's Core keeps no per-request state)."""

    def __init__(
        self, config: WechatpayConfig, *, problems: list[str], timeout: tuple[float, float]
    ) -> None:
        self.config = config
        self.problems = problems
        self.timeout = timeout
        self._core: Core | None = None
        self._lock = threading.Lock()

    def _client(self) -> Core:
        if self.problems:
            raise ProviderRequestRefused(
                f"WeChat Pay is not configured: {' '.join(self.problems)}",
                channel=CHANNEL,
                provider_code="not_configured",
            )
        with self._lock:
            if self._core is None:
                self._core = self._build()
            return self._core

    def _build(self) -> Core:
        certificate = platform_certificate(self.config.platform_cert)
        try:
            core = _Core(
                mchid=self.config.mch_id,
                cert_serial_no=self.config.merchant_serial_no,
                private_key=private_key_pkcs8(self.config.private_key),
                apiv3_key=self.config.api_v3_key,
                timeout=self.timeout,
                public_key=public_key_pem(certificate),
                public_key_id=serial_hex(certificate),
            )
        except Exception as exc:  # the SDK raises a bare Exception for unreadable keys
            raise ProviderRequestRefused(
                f"WeChat Pay is not configured: {exc}",
                channel=CHANNEL,
                provider_code="not_configured",
            ) from None
        core._gate_way = self.config.base_url.rstrip("/")
        # A serial written otherwise (lower case, leading zeros) is still this certificate.
        core._certificates = [certificate]
        return core

    def _request(
        self, operation: str, path: str, method: RequestType, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        core = self._client()
        try:
            status, text = core.request(path, method=method, data=data)
        except requests.RequestException as exc:
            raise errors.unreachable(exc, operation) from None
        except Exception as exc:  # the SDK's "failed to verify the signature", and others
            raise errors.unverified(exc, operation) from None
        return errors.answer(status, text, operation)

    # ---- payments ----

    def create_transaction(self, trade_type: str, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v3/pay/transactions/{native,jsapi,h5}: code_url, prepay_id or h5_url."""
        return self._request(
            f"create_{trade_type}", f"/v3/pay/transactions/{trade_type}", RequestType.POST, params
        )

    def query_transaction(self, out_trade_no: str) -> dict[str, Any]:
        path = (
            f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}"
            f"?mchid={quote(self.config.mch_id, safe='')}"
        )
        return self._request("query_transaction", path, RequestType.GET)

    def close_transaction(self, out_trade_no: str) -> None:
        """Answered 204 with no body."""
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/close"
        self._request("close_transaction", path, RequestType.POST, {"mchid": self.config.mch_id})

    # ---- refunds ----

    def create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._request(
            "create_refund", "/v3/refund/domestic/refunds", RequestType.POST, params
        )

    def query_refund(self, out_refund_no: str) -> dict[str, Any]:
        path = f"/v3/refund/domestic/refunds/{quote(out_refund_no, safe='')}"
        return self._request("query_refund", path, RequestType.GET)

    # ---- the client's signature ----

    def sign(self, lines: list[str]) -> str:
        """RSA-SHA256 (base64) of the lines, each ended by a newline, with our key: the
        paySign of a JSAPI payment (appId, timeStamp, nonceStr, package)."""
        return self._client().sign(lines)
