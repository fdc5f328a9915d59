"""WeChat Pay, natively (API v3): Native (QR), JSAPI and H5 payments, refunds and
notifications, for the platform's merchant account or a creator's.

``WechatpayProvider`` composes the SDK adapter (``api``, one client per instance, built
on first use), the payload readers (``payloads``, ``events``) and the platform's own
attempt rows (``native_rows.NativeRows`` over ``order_wechatpay_orders``). Our attempt
bid is the merchant order number (``out_trade_no``), which makes a payment idempotent at
WeChat Pay; our refund bid is the merchant refund number (``out_refund_no``), which
makes a refund idempotent.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from django.conf import settings

from payments.models import WechatpayOrder
from payments.providers.base import (
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    PaymentMethodInvalid,
    PaymentRequest,
    PaymentStart,
    PaymentState,
    ProviderBadResponse,
    ProviderEvent,
    ProviderRequestRefused,
    RefundRequest,
    RefundState,
    RowsDelegated,
    WebhookNotConfigured,
    closed_before_creation,
)
from payments.providers.merchant import MerchantFields, merchant_url_problem
from payments.providers.native_rows import NativeRows
from payments.providers.payloads import plain
from payments.providers.wechatpay import payloads
from payments.providers.wechatpay.api import WechatpayApi
from payments.providers.wechatpay.config import (
    CHANNEL,
    WechatpayConfig,
    platform_certificate,
)
from payments.providers.wechatpay.errors import provider_code, read_answer
from payments.providers.wechatpay.events import (
    WebhookKeys,
    notification_payload,
    parse_event,
    verify_signature,
)

# Refused create or close calls whose answer is "it is paid": ask for its state.
PAID = "ORDERPAID"
# A query of an order WeChat Pay does not know; of a refund it does not know.
ORDER_NOT_EXIST = "ORDER_NOT_EXIST"
REFUND_NOT_EXIST = "RESOURCE_NOT_EXISTS"


# WeChat Pay's own API hosts (its main and its backup domain).
API_HOSTS = frozenset({"api.mch.weixin.qq.com", "api2.mch.weixin.qq.com"})


class WechatpayProvider(RowsDelegated):
    """WeChat Pay API v3 for one merchant account (mchid) and app (appid)."""

    channel: ClassVar[str] = CHANNEL
    methods: ClassVar[tuple[str, ...]] = ("wx_pub_qr", "wx_pub", "wx_wap")
    default_method: ClassVar[str] = "wx_pub_qr"
    currencies: ClassVar[frozenset[str] | None] = frozenset({"cny"})
    attempt_model: ClassVar[type] = WechatpayOrder
    merchant_fields: ClassVar[MerchantFields] = MerchantFields(
        public=("app_id", "mch_id", "merchant_serial_no", "base_url"),
        secret=("api_v3_key", "private_key", "platform_cert"),
        optional=frozenset({"base_url"}),
    )
    livemode: bool | None = None  # WeChat Pay has no test mode
    app_id: str = ""
    # Signatures carry their time: verified once, kept decrypted (event_from_payload).
    signature_kept: bool = False
    refusal_acknowledged: bool = False

    # Seconds, as the SDK's requests call takes them: (connect, read). The SDK never
    # retries; the services do, and out_trade_no / out_refund_no make that safe.
    connect_timeout: ClassVar[float] = 10.0
    read_timeout: ClassVar[float] = 30.0

    def __init__(self, config: WechatpayConfig | None = None) -> None:
        self.config = config if config is not None else WechatpayConfig.from_settings()
        self.app_id = self.config.app_id
        self.mch_id = self.config.mch_id
        self.notify_url = self.config.notify_url
        self.api = WechatpayApi(
            self.config,
            problems=self.config.problems(),
            timeout=(self.connect_timeout, self.read_timeout),
        )
        self._webhook_problems = self.config.webhook_problems()
        self._webhook_keys: WebhookKeys | None = None
        if not self._webhook_problems:
            certificate = platform_certificate(self.config.platform_cert)
            self._webhook_keys = WebhookKeys(
                mch_id=self.mch_id,
                platform_key=certificate.public_key(),  # type: ignore[arg-type]
                platform_serial=certificate.serial_number,
                api_v3_key=self.config.api_v3_key.encode("utf-8"),
            )
        self.rows = NativeRows(WechatpayOrder)

    # ---- merchant accounts of their own ----

    @classmethod
    def for_merchant(
        cls, *, integration_bid: str, public: Mapping[str, str], secret: Mapping[str, str]
    ) -> WechatpayProvider:
        """The provider of a creator's merchant account, notified at its own URL."""
        return cls(WechatpayConfig.from_merchant(public, secret, integration_bid))

    @classmethod
    def merchant_problems(cls, public: Mapping[str, str], secret: Mapping[str, str]) -> list[str]:
        """What is wrong with an integration's fields; [] when they can be used."""
        missing = [f"{name} is required." for name in cls.merchant_fields.missing(public, secret)]
        problems = WechatpayConfig.from_merchant(public, secret).account_problems()
        url = merchant_url_problem(
            str(public.get("base_url") or "").strip(),
            known_hosts=API_HOSTS,
            configured=settings.WECHATPAY_BASE_URL,
        )
        return missing + problems + ([url] if url else [])

    # ---- attempt rows: RowsDelegated, to self.rows ----

    # ---- payments ----

    def start_payment(self, request: PaymentRequest) -> PaymentStart:
        payloads.check_currency(request.currency)
        trade_type = payloads.TRADE_TYPES.get(request.method)
        if trade_type is None:
            raise PaymentMethodInvalid(
                f"WeChat Pay has no method {request.method!r}.", channel=CHANNEL
            )
        params = payloads.transaction_params(
            request, app_id=self.app_id, mch_id=self.mch_id, notify_url=self.notify_url
        )
        if trade_type == "jsapi":
            if not request.open_id:
                raise PaymentMethodInvalid(
                    "A JSAPI payment needs the payer's open id.", channel=CHANNEL
                )
            params["payer"] = {"openid": request.open_id}
        if trade_type == "h5":
            params["scene_info"] = {
                "payer_client_ip": request.client_ip,
                "h5_info": {"type": "Wap"},
            }
        try:
            answer = self.api.create_transaction(trade_type, params)
        except ProviderRequestRefused as exc:
            # The same out_trade_no again, already paid: the attempt succeeded.
            if provider_code(exc) != PAID:
                raise
            state = self.fetch_payment(request.attempt_bid)
            if state.state != PAYMENT_SUCCEEDED:
                raise
            return PaymentStart(
                provider_payment_id=request.attempt_bid,
                state=PAYMENT_SUCCEEDED,
                client_data={},
                raw={"out_trade_no": request.attempt_bid, "trade_type": trade_type,
                     "transaction": dict(state.raw)},
            )  # fmt: skip
        client_data = self._client_data(trade_type, answer)
        return PaymentStart(
            provider_payment_id=request.attempt_bid,
            state=PAYMENT_PENDING,
            client_data=client_data,
            raw={"out_trade_no": request.attempt_bid, "trade_type": trade_type, **answer},
        )

    def _client_data(self, trade_type: str, answer: Mapping[str, Any]) -> dict[str, Any]:
        field = {"native": "code_url", "jsapi": "prepay_id", "h5": "h5_url"}[trade_type]
        value = answer.get(field)
        if not isinstance(value, str) or not value:
            raise ProviderBadResponse(
                f"WeChat Pay created a {trade_type} payment without its {field}.",
                channel=CHANNEL,
                operation=f"create_{trade_type}",
            )
        if trade_type == "native":
            return {"qr_url": value}
        if trade_type == "h5":
            return {"redirect_url": value}
        # What the page hands to WeixinJSBridge's getBrandWCPayRequest.
        jsapi = {
            "appId": self.app_id,
            "timeStamp": str(int(time.time())),
            "nonceStr": secrets.token_hex(16),
            "package": f"prepay_id={value}",
            "signType": "RSA",
        }
        jsapi["paySign"] = self.api.sign(
            [jsapi["appId"], jsapi["timeStamp"], jsapi["nonceStr"], jsapi["package"]]
        )
        return {"jsapi": jsapi}

    def fetch_payment(self, provider_payment_id: str) -> PaymentState:
        """The order by its out_trade_no (our attempt bid); refused (ORDER_NOT_EXIST)
        when WeChat Pay does not know it."""
        state = read_answer(
            payloads.payment_state_of, self.api.query_transaction(provider_payment_id)
        )
        if state.provider_payment_id != provider_payment_id:
            raise ProviderBadResponse(
                "WeChat Pay answered another order than the one asked for.",
                channel=CHANNEL,
                operation="query_transaction",
            )
        return state

    # ---- closing ----

    def close_payment(self, attempt: WechatpayOrder) -> PaymentState:
        """Close the order, then answer its state: closed; succeeded when it was paid
        meanwhile (close refused with ORDERPAID); closed when WeChat Pay does not know
        it (nothing can be paid). An attempt whose start never got an answer is closed
        with no call: no one was given anything to pay it with."""
        out_trade_no = attempt.provider_payment_id
        if not out_trade_no or not attempt.raw_response:
            return closed_before_creation(attempt)
        try:
            self.api.close_transaction(out_trade_no)
        except ProviderRequestRefused as exc:
            if provider_code(exc) == ORDER_NOT_EXIST:
                return replace(closed_before_creation(attempt), provider_payment_id=out_trade_no)
            # Paid meanwhile (ORDERPAID), or refused otherwise: the order says what it is.
        try:
            state = self.fetch_payment(out_trade_no)
        except ProviderRequestRefused as exc:
            if provider_code(exc) != ORDER_NOT_EXIST:
                raise
            return replace(closed_before_creation(attempt), provider_payment_id=out_trade_no)
        if state.state == PAYMENT_FAILED:
            # Not closed, and a failed try does not close it: payable until it expires.
            state = replace(state, state=PAYMENT_PENDING)
        return state

    # ---- refunds ----

    def refund(self, request: RefundRequest) -> RefundState:
        payloads.check_currency(request.currency)
        params = payloads.refund_params(
            out_trade_no=request.provider_payment_id,
            out_refund_no=request.refund_bid,
            reason=request.reason,
            notify_url=self.notify_url,
            amount=request.amount,
            total=self._order_total(request.provider_payment_id),
        )
        return self._refund_state(self.api.create_refund(params), request.provider_payment_id)

    def _order_total(self, out_trade_no: str) -> int:
        """The order's total, which WeChat Pay wants with every refund. The attempt row
        holds what was sent as amount.total when the order was made, so it is read
        there, with no call; an order with no row here (made by another system) is
        asked of WeChat Pay."""
        row = self.rows.attempts_for(provider_payment_id=out_trade_no).first()
        if row is not None and row.amount > 0:
            return int(row.amount)
        state = self.fetch_payment(out_trade_no)
        if state.state != PAYMENT_SUCCEEDED or state.amount <= 0:
            raise ProviderRequestRefused(
                f"WeChat Pay order {out_trade_no} is not paid: nothing to refund.",
                channel=CHANNEL,
                provider_code="not_paid",
            )
        return state.amount

    def fetch_refund(self, provider_payment_id: str, provider_refund_id: str) -> RefundState:
        """``provider_refund_id`` is our out_refund_no (see ``payloads``)."""
        return self._refund_state(self.api.query_refund(provider_refund_id), provider_payment_id)

    def find_refund(self, provider_payment_id: str, refund_bid: str) -> RefundState | None:
        if not refund_bid:
            raise ValueError("find_refund needs a refund_bid.")
        try:
            answer = self.api.query_refund(refund_bid)
        except ProviderRequestRefused as exc:
            if provider_code(exc) == REFUND_NOT_EXIST:
                return None
            raise
        return self._refund_state(answer, provider_payment_id)

    @staticmethod
    def _refund_state(answer: Mapping[str, Any], provider_payment_id: str) -> RefundState:
        refund = read_answer(payloads.refund_state_of, answer)
        if refund.provider_payment_id != provider_payment_id:
            raise ProviderBadResponse(
                f"WeChat Pay's refund {refund.refund_bid} is of another order.",
                channel=CHANNEL,
                operation="refund",
            )
        return refund

    # ---- notifications ----

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        if self._webhook_keys is None:
            raise WebhookNotConfigured(
                f"WeChat Pay notifications cannot be verified: {' '.join(self._webhook_problems)}",
                channel=CHANNEL,
            )
        body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        verify_signature(self._webhook_keys, body, headers)
        payload = notification_payload(self._webhook_keys, body)
        return parse_event(payload, mch_id=self.mch_id)

    def event_from_payload(self, payload: Mapping[str, Any]) -> ProviderEvent:
        """A notification kept decrypted when it was verified, parsed again."""
        return parse_event(plain(payload), mch_id=self.mch_id)
