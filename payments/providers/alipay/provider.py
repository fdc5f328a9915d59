"""``AlipayProvider``: Alipay's open platform as a payment channel.

The merchant order number (``out_trade_no``) is our attempt id, sent with every trade
and named by every query, refund and close; a refund is tied to ours by
``out_request_no`` (our refund id), which makes Alipay's refund idempotent and is the
refund's id here. Notifications are form posts signed over their sorted fields, verified
with Alipay's public key; the body is kept whole and verified again when applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from django.conf import settings
from django.utils import timezone

from payments.models import AlipayOrder
from payments.native import EXPIRES_KEY
from payments.providers.alipay import api, sign
from payments.providers.alipay.config import CHANNEL, MERCHANT_FIELDS, AlipayConfig
from payments.providers.alipay.payloads import (
    CURRENCY,
    notification_event,
    refund_state,
    trade_state,
    yuan,
)
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_PENDING,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    CurrencyNotSupported,
    PaymentMethodInvalid,
    PaymentRequest,
    PaymentStart,
    PaymentState,
    ProviderBadResponse,
    ProviderEvent,
    RefundRequest,
    RefundState,
    RowsDelegated,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
    closed_before_creation,
)
from payments.providers.native_rows import NativeRows
from payments.providers.payloads import Malformed, answer_reader

# The API method and product of each payment method.
PRECREATE = "alipay.trade.precreate"
PAGES = {
    "alipay_pc_direct": ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
    "alipay_wap": ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
}
NOT_FOUND = "ACQ.TRADE_NOT_EXIST"
# After time_expire Alipay takes no payment; a minute's margin for clocks.
EXPIRY_MARGIN = timedelta(minutes=1)
SUBJECT_MAX = 256
_read = answer_reader("Alipay", CHANNEL)
BODY_MAX = 128


class AlipayProvider(RowsDelegated):
    """Alipay's QR code (当面付), desktop page and phone page payments, refunds and
    notifications."""

    channel: ClassVar[str] = CHANNEL
    methods: ClassVar[tuple[str, ...]] = ("alipay_qr", "alipay_pc_direct", "alipay_wap")
    default_method: ClassVar[str] = "alipay_qr"
    currencies: ClassVar[frozenset[str] | None] = frozenset({CURRENCY})
    attempt_model: ClassVar[type] = AlipayOrder
    merchant_fields = MERCHANT_FIELDS
    livemode: bool | None = None
    app_id: str = ""  # the configuration's, set when built
    signature_kept: bool = True
    refusal_acknowledged: bool = False

    def __init__(self, config: AlipayConfig | None = None) -> None:
        self.config = config or AlipayConfig.from_settings()
        self.app_id: str = self.config.app_id
        self.rows = NativeRows(AlipayOrder)

    @classmethod
    def for_merchant(
        cls, *, integration_bid: str, public: Mapping[str, str], secret: Mapping[str, str]
    ) -> AlipayProvider:
        config = AlipayConfig.from_merchant(
            integration_bid=integration_bid, public=public, secret=secret
        )
        return cls(config)

    @classmethod
    def merchant_problems(cls, public: Mapping[str, str], secret: Mapping[str, str]) -> list[str]:
        config = AlipayConfig.from_merchant(integration_bid="?", public=public, secret=secret)
        missing = MERCHANT_FIELDS.missing(public, secret)
        return [f"{name} is missing" for name in missing] or config.problems()

    # ---- payments ----

    def start_payment(self, request: PaymentRequest) -> PaymentStart:
        if request.currency.lower() != CURRENCY:
            raise CurrencyNotSupported(
                f"Alipay takes CNY only, not {request.currency.upper()}.", channel=CHANNEL
            )
        biz: dict[str, Any] = {
            "out_trade_no": request.attempt_bid,
            "total_amount": yuan(request.amount),
            "subject": (request.subject or request.order_bid)[:SUBJECT_MAX],
            "body": (request.body or request.subject)[:BODY_MAX],
        }
        if request.expires_at is not None:
            biz["time_expire"] = api.china_time(request.expires_at)
        if request.method == "alipay_qr":
            answer = api.call(self.config, PRECREATE, biz, notify_url=self.config.notify_url)
            qr_code = answer.get("qr_code")
            if not isinstance(qr_code, str) or not qr_code:
                raise ProviderBadResponse(
                    "Alipay gave no QR code.", channel=CHANNEL, operation="trade.precreate"
                )
            client_data: dict[str, Any] = {"qr_url": qr_code}
            raw: Mapping[str, Any] = answer
        elif request.method in PAGES:
            method, product = PAGES[request.method]
            biz["product_code"] = product
            if request.method == "alipay_wap" and request.cancel_url:
                biz["quit_url"] = request.cancel_url
            url = api.page_url(
                self.config,
                method,
                biz,
                notify_url=self.config.notify_url,
                return_url=request.success_url,
            )
            client_data = {"redirect_url": url}
            raw = {"method": method, "biz_content": biz}
        else:
            raise PaymentMethodInvalid(f"Alipay has no method {request.method!r}.", channel=CHANNEL)
        return PaymentStart(
            provider_payment_id=request.attempt_bid,
            state=PAYMENT_PENDING,
            client_data=client_data,
            raw=raw,
        )

    def fetch_payment(self, provider_payment_id: str) -> PaymentState:
        try:
            answer = api.call(
                self.config, "alipay.trade.query", {"out_trade_no": provider_payment_id}
            )
        except api.Refused as exc:
            if exc.sub_code == NOT_FOUND:
                return self._not_created(provider_payment_id)
            raise
        return _read(trade_state, answer)

    def _not_created(self, out_trade_no: str) -> PaymentState:
        """A trade Alipay has not created yet: its QR code was never scanned, or its page
        never opened. It can be until its time_expire, and is closed after it."""
        attempt = self.rows.attempts_for(provider_payment_id=out_trade_no).first()
        if attempt is None:
            raise api.Refused(
                f"Alipay has no trade {out_trade_no}, and neither has this service.",
                channel=CHANNEL,
                provider_code=NOT_FOUND,
            )
        expires = _expiry(attempt)
        over = expires is not None and timezone.now() > expires + EXPIRY_MARGIN
        return PaymentState(
            provider_payment_id=out_trade_no,
            attempt_bid=out_trade_no,
            state=PAYMENT_CLOSED if over else PAYMENT_PENDING,
            amount=attempt.amount,
            currency=attempt.currency_code,
            raw={"trade_status": "NOT_CREATED", "out_trade_no": out_trade_no},
        )

    # ---- closing ----

    def close_payment(self, attempt: AlipayOrder) -> PaymentState:
        """Close the trade. A trade not created at Alipay yet (a QR code nobody scanned)
        cannot be closed: pending until its time_expire, closed after it. A trade paid
        meanwhile answers paid."""
        if not attempt.raw_response:
            return closed_before_creation(attempt)  # its QR code or page never left here
        out_trade_no = attempt.provider_payment_id
        try:
            api.call(self.config, "alipay.trade.close", {"out_trade_no": out_trade_no})
        except api.Refused as exc:
            if exc.sub_code == NOT_FOUND:
                return self._not_created(out_trade_no)
            if exc.sub_code.startswith("unsigned:"):
                raise
            # ACQ.TRADE_STATUS_ERROR and the like: paid, or closed already.
            return self.fetch_payment(out_trade_no)
        state = self.fetch_payment(out_trade_no)
        if state.state == PAYMENT_PENDING:
            state = replace(state, state=PAYMENT_CLOSED)
        return state

    # ---- refunds ----

    def refund(self, request: RefundRequest) -> RefundState:
        if request.currency.lower() != CURRENCY:
            raise CurrencyNotSupported(
                f"Alipay refunds CNY only, not {request.currency.upper()}.", channel=CHANNEL
            )
        answer = api.call(
            self.config,
            "alipay.trade.refund",
            {
                "out_trade_no": request.provider_payment_id,
                "refund_amount": yuan(request.amount),
                "out_request_no": request.refund_bid,
                "refund_reason": (request.reason or "refund")[:256],
            },
        )
        if answer.get("fund_change") == "Y":
            return _asked(request, REFUND_SUCCEEDED, answer)
        # No money moved by this call: it repeated a refund already made, or Alipay is
        # still at it. Its own record of this out_request_no says which.
        found = self.find_refund(request.provider_payment_id, request.refund_bid)
        return found if found is not None else _asked(request, REFUND_PENDING, answer)

    def fetch_refund(self, provider_payment_id: str, provider_refund_id: str) -> RefundState:
        found = self.find_refund(provider_payment_id, provider_refund_id)
        if found is None:
            raise api.Refused(
                f"Alipay has no refund {provider_refund_id} of {provider_payment_id}.",
                channel=CHANNEL,
                provider_code="refund_not_found",
            )
        return found

    def find_refund(self, provider_payment_id: str, refund_bid: str) -> RefundState | None:
        if not refund_bid:
            raise ValueError("find_refund needs a refund_bid.")
        answer = api.call(
            self.config,
            "alipay.trade.fastpay.refund.query",
            {
                "out_trade_no": provider_payment_id,
                "out_request_no": refund_bid,
                "query_options": ["gmt_refund_pay"],
            },
        )
        if not answer.get("refund_amount"):
            return None  # Alipay documents an answer without the refund as no refund
        return _read(refund_state, answer, out_trade_no=provider_payment_id, refund_bid=refund_bid)

    # ---- notifications ----

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        if not self.config.alipay_public_key:
            raise WebhookNotConfigured(
                "Alipay notifications cannot be verified: no Alipay public key.", channel=CHANNEL
            )
        try:
            text = bytes(body).decode("utf-8")
            params = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
        except (UnicodeDecodeError, ValueError):
            raise WebhookPayloadInvalid(
                "The notification is not a form.", channel=CHANNEL
            ) from None
        signature = params.get("sign", "")
        if not signature:
            raise WebhookSignatureInvalid(
                "The notification carries no signature.", channel=CHANNEL, signature="missing"
            )
        try:
            key = self.config.verifying_key
        except sign.KeyInvalid as exc:
            raise WebhookNotConfigured(
                f"Alipay's public key cannot be read: {exc}.", channel=CHANNEL
            ) from None
        if params.get("sign_type", "RSA2") != "RSA2" or not sign.verify(
            key, sign.content(params), signature
        ):
            raise WebhookSignatureInvalid(
                "The notification's signature does not match its fields.",
                channel=CHANNEL,
                signature="mismatch",
            )
        return self.event_from_payload(params)

    def event_from_payload(self, payload: Mapping[str, Any]) -> ProviderEvent:
        try:
            return notification_event({str(k): str(v) for k, v in payload.items()})
        except Malformed as exc:
            raise WebhookPayloadInvalid(
                f"The notification is not an Alipay trade notification: {exc}.",
                channel=CHANNEL,
                signature="valid",
            ) from None


def _asked(request: RefundRequest, state: str, answer: Mapping[str, Any]) -> RefundState:
    """The refund as asked for, in ``state``: Alipay's answer names no refund id, and
    our refund id (its out_request_no) is the one it is found by."""
    return RefundState(
        provider_refund_id=request.refund_bid,
        provider_payment_id=request.provider_payment_id,
        refund_bid=request.refund_bid,
        state=state,
        amount=request.amount,
        currency=CURRENCY,
        raw=answer,
    )


def _expiry(attempt: AlipayOrder) -> datetime | None:
    """When the attempt stops being payable: the expiry sent with it, or, for a row the
    platform wrote (which records none), its creation plus the orders' time-out."""
    value = attempt.metadata_map.get(EXPIRES_KEY)
    try:
        if isinstance(value, str) and value:
            return datetime.fromisoformat(value)
    except ValueError:
        pass
    if attempt.created_at is None:
        return None
    return attempt.created_at + timedelta(seconds=settings.PAY_ORDER_EXPIRE_SECONDS)
