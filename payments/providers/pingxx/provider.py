"""Ping++ (pingxx.com): Alipay and WeChat Pay charges, refunds and webhooks.

``PingxxProvider`` composes the SDK adapter (``api``: the SDK keeps its configuration in
module globals, which each provider instance sets once, from the settings, when it is
built; the registry builds one per settings state) and the row mapping
(``rows.PingxxRows``). Ping++ has no idempotency key: a charge is tied to our attempt by
``order_no`` (the attempt bid) and a refund to our refund by ``metadata.refund_bid``,
which ``find_refund`` looks for before a retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from django.conf import settings

from payments.models import PingxxOrder
from payments.providers.base import (
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
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
    WebhookPayloadInvalid,
    closed_before_creation,
)
from payments.providers.payloads import Malformed, header, metadata, plain, text
from payments.providers.pingxx import api, keys, params
from payments.providers.pingxx.errors import CHANNEL, read_answer
from payments.providers.pingxx.events import SIGNATURE_HEADER, parse_event, verify_signature
from payments.providers.pingxx.payloads import (
    QR_FIELDS,
    client_data_of,
    payment_state_of,
    refund_state_of,
)
from payments.providers.pingxx.rows import PingxxRows

# The methods whose unpaid charges Ping++ can reverse (撤销, POST /v1/charges/{id}/reverse),
# as its API reference "撤销 Charge 对象" lists them: alipay, alipay_qr, alipay_lite, wx,
# wx_wap, wx_lite, wx_pub, wx_pub_qr, upacp*, the *_scan and isv_* channels. Not
# alipay_pc_direct: its charges stay payable until their time_expire. (An older revision
# of that page named only the *_scan and isv_* channels: where Ping++ refuses a reverse,
# close_payment answers the charge's own state.)
REVERSIBLE_METHODS = frozenset({"alipay_qr", "wx_pub_qr", "wx_pub", "wx_wap"})


class PingxxProvider(RowsDelegated):
    """Ping++ charges (QR, PC and WeChat in-app methods), refunds and webhooks."""

    channel: ClassVar[str] = CHANNEL
    livemode: bool | None = None  # set from the secret key
    signature_kept: bool = True
    refusal_acknowledged: bool = False
    app_id: str = ""
    methods: ClassVar[tuple[str, ...]] = (
        "alipay_qr",
        "wx_pub_qr",
        "alipay_pc_direct",
        "wx_pub",
        "wx_wap",
    )
    default_method: ClassVar[str] = "alipay_qr"
    currencies: ClassVar[frozenset[str] | None] = frozenset({"cny"})
    attempt_model: ClassVar[type] = PingxxOrder

    # Seconds; the SDK's requests client takes them as one (connect, read) timeout.
    connect_timeout: ClassVar[float] = 10.0
    read_timeout: ClassVar[float] = 30.0
    # The SDK retries only on a 502, blindly, POSTs included. A charge or refund that
    # went through behind a failing gateway would be made twice (refunds have no
    # idempotency key), so the services retry, after find_refund, instead.
    max_network_retries: ClassVar[int] = 0

    def __init__(self) -> None:
        self.app_id: str = settings.PINGXX_APP_ID
        # Events of the other mode are refused by the webhook inbox.
        self.livemode: bool = settings.PINGXX_SECRET_KEY.startswith("sk_live_")
        self._configure_sdk()
        self._webhook_key, self._webhook_problem = keys.webhook_public_key()
        self.rows = PingxxRows(app_id=self.app_id, methods=self.methods)

    def _configure_sdk(self) -> None:
        api.require_requests_client()
        private_key = keys.merchant_private_key()
        api.configure(
            api_base=settings.PINGXX_API_BASE,
            api_key=settings.PINGXX_SECRET_KEY,
            app_id=self.app_id,
            private_key=private_key,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_network_retries=self.max_network_retries,
        )

    # ---- attempt rows: RowsDelegated, to self.rows ----

    # ---- payments ----

    def start_payment(self, request: PaymentRequest) -> PaymentStart:
        params.check_currency(request.currency)
        extra = params.channel_extra(request, self.methods)
        subject, body = params.subject_and_body(request)
        charge_metadata = {
            **request.metadata,
            "order_bid": request.order_bid,
            "attempt_bid": request.attempt_bid,
        }
        expiry = {}
        if request.expires_at is not None:
            expiry["time_expire"] = int(request.expires_at.timestamp())
        charge = api.create_charge(
            **expiry,
            order_no=request.attempt_bid,
            app={"id": self.app_id},
            channel=request.method,
            amount=request.amount,
            client_ip=request.client_ip,
            currency="cny",
            subject=subject,
            body=body,
            extra=extra,
            metadata=charge_metadata,
        )
        state = read_answer(payment_state_of, charge)
        client_data = client_data_of(request.method, charge)
        if (
            request.method in QR_FIELDS
            and not client_data["qr_url"]
            and state.state != PAYMENT_SUCCEEDED
        ):
            raise ProviderBadResponse(
                "Ping++ gave a charge without a QR code URL.",
                channel=CHANNEL,
                operation="create_charge",
                charge_id=state.provider_payment_id,
            )
        return PaymentStart(
            provider_payment_id=state.provider_payment_id,
            state=PAYMENT_SUCCEEDED if state.state == PAYMENT_SUCCEEDED else PAYMENT_PENDING,
            client_data=client_data,
            raw=charge,
        )

    def fetch_payment(self, provider_payment_id: str) -> PaymentState:
        return read_answer(payment_state_of, api.retrieve_charge(provider_payment_id))

    # ---- closing ----

    def close_payment(self, attempt: PingxxOrder) -> PaymentState:
        """Reverse the attempt's charge where its method allows it; otherwise, or when
        Ping++ refuses the reverse (paid, already reversed or expired, too early for
        WeChat), the charge as it is now. An unpaid charge that is neither reversed nor
        expired stays pending: it can be paid until its time_expire."""
        charge_id = attempt.charge_id
        if not charge_id:
            return closed_before_creation(attempt)
        stored = attempt.charge
        method = attempt.channel or text(stored if isinstance(stored, Mapping) else {}, "channel")
        state: PaymentState | None = None
        if method in REVERSIBLE_METHODS:
            try:
                charge = api.reverse_charge(charge_id)
            except ProviderRequestRefused:
                pass  # errors.translate logged why; the charge says what it is now
            else:
                state = read_answer(payment_state_of, charge)
        if state is None:
            state = self.fetch_payment(charge_id)
        if state.state == PAYMENT_FAILED:
            # Nothing closed it, and a failed try does not: it may be paid until it expires.
            state = replace(state, state=PAYMENT_PENDING)
        return state

    # ---- refunds ----

    def refund(self, request: RefundRequest) -> RefundState:
        params.check_currency(request.currency)
        refund = api.create_refund(
            request.provider_payment_id,
            amount=request.amount,
            description=params.refund_description(request.reason),
            metadata={"refund_bid": request.refund_bid},
        )
        return read_answer(refund_state_of, refund)

    def fetch_refund(self, provider_payment_id: str, provider_refund_id: str) -> RefundState:
        refund = api.retrieve_refund(provider_payment_id, provider_refund_id)
        return read_answer(refund_state_of, refund)

    def find_refund(self, provider_payment_id: str, refund_bid: str) -> RefundState | None:
        """The refund whose metadata names ``refund_bid``, reading every page.

        Prefers a pending or succeeded refund over a failed one made for the same bid.
        Raises rather than answer None when the list cannot be read to its end, since
        None lets the caller refund again.
        """
        if not refund_bid:
            raise ValueError("find_refund needs a refund_bid.")
        found = [
            read_answer(refund_state_of, item)
            for item in api.refunds(provider_payment_id)
            if isinstance(item, Mapping) and metadata(item).get("refund_bid") == refund_bid
        ]
        live = [refund for refund in found if refund.state != REFUND_FAILED]
        return (live or found or [None])[0]

    # ---- webhooks ----

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        if self._webhook_key is None:
            raise WebhookNotConfigured(
                f"Ping++ webhooks cannot be verified: {self._webhook_problem}", channel=CHANNEL
            )
        body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        verify_signature(self._webhook_key, body, header(headers, SIGNATURE_HEADER))
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookPayloadInvalid("The webhook body is not JSON.", channel=CHANNEL) from None
        return self._event(event)

    def event_from_payload(self, payload: Mapping[str, Any]) -> ProviderEvent:
        """A stored event, already verified, parsed again WITHOUT its signature."""
        return self._event(plain(payload))

    @staticmethod
    def _event(event: Any) -> ProviderEvent:
        try:
            return parse_event(event)
        except Malformed as exc:
            raise WebhookPayloadInvalid(
                f"The webhook body is not a Ping++ event: {exc}.", channel=CHANNEL
            ) from None
