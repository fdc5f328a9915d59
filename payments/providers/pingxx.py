"""Ping++ (pingxx.com): Alipay and WeChat Pay charges through the pingpp SDK.

The SDK keeps its configuration in module globals; each provider instance sets them
once, from the settings, when it is built (the registry builds one per settings state).
Ping++ has no idempotency key: a charge is tied to our attempt by ``order_no`` (the
attempt bid) and a refund to our refund by ``metadata.refund_bid``, which
``find_refund`` looks for before a retry.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import certifi
import pingpp
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.Signature import pkcs1_15
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q, QuerySet
from django.utils import timezone
from pingpp import error as pingpp_error
from pingpp import http_client as pingpp_http_client

from payments.models import AttemptStatus, PingxxOrder
from payments.providers.base import (
    EVENT_OTHER,
    EVENT_PAYMENT,
    EVENT_REFUND,
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    CurrencyNotSupported,
    PaymentMethodInvalid,
    PaymentRequest,
    PaymentStart,
    PaymentState,
    ProviderBadResponse,
    ProviderError,
    ProviderEvent,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundRequest,
    RefundState,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
    closed_before_creation,
)
from payments_project.checks import KeyUnreadable, read_pem

logger = logging.getLogger(__name__)

CHANNEL = "pingxx"

# Ping++'s limits, in characters.
SUBJECT_MAX = 32
BODY_MAX = 128
DESCRIPTION_MAX = 255
# Width of the legacy failure columns.
FAILURE_MAX = 255
# How much of a provider message goes into an error's details.
MESSAGE_MAX = 500

# The credential field holding the QR code URL, for the QR methods.
QR_FIELDS = {"alipay_qr": "alipay_qr", "wx_pub_qr": "wx_pub_qr"}

# The methods whose unpaid charges Ping++ can reverse (撤销, POST /v1/charges/{id}/reverse),
# as its API reference "撤销 Charge 对象" lists them: alipay, alipay_qr, alipay_lite, wx,
# wx_wap, wx_lite, wx_pub, wx_pub_qr, upacp*, the *_scan and isv_* channels. Not
# alipay_pc_direct: its charges stay payable until their time_expire. (An older revision
# of that page named only the *_scan and isv_* channels: where Ping++ refuses a reverse,
# close_payment answers the charge's own state.)
REVERSIBLE_METHODS = frozenset({"alipay_qr", "wx_pub_qr", "wx_pub", "wx_wap"})

SIGNATURE_HEADER = "x-pingplusplus-signature"

REFUND_STATUSES = {
    "pending": REFUND_PENDING,
    "succeeded": REFUND_SUCCEEDED,
    "failed": REFUND_FAILED,
}

# Paging through a charge's refunds: Ping++ allows at most 100 a page.
REFUND_PAGE_SIZE = 100
REFUND_MAX_PAGES = 50


class _Malformed(ValueError):
    """An object from Ping++ that lacks what this module reads from it."""


def _clean_text(text: str, limit: int) -> str:
    """``text`` without characters outside the BMP (emoji), trimmed to ``limit``."""
    kept = "".join(char for char in text if ord(char) <= 0xFFFF).strip()
    return kept[:limit].strip()


def _plain(value: Any) -> Any:
    """An SDK object (dict subclasses all the way down) as plain JSON-safe values."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _integer(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{obj.get('object') or 'object'} has no integer {key!r}")
    return value


def _identifier(obj: Any, kind: str) -> str:
    if not isinstance(obj, Mapping) or obj.get("object") != kind:
        raise _Malformed(f"expected a {kind} object")
    value = obj.get("id")
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{kind} has no id")
    return value


def _timestamp(obj: Mapping[str, Any], key: str) -> datetime | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _livemode(obj: Mapping[str, Any]) -> bool | None:
    value = obj.get("livemode")
    return value if isinstance(value, bool) else None


def payment_state_of(charge: Mapping[str, Any], *, now: float | None = None) -> PaymentState:
    """The normalised state of a Ping++ charge object."""
    charge_id = _identifier(charge, "charge")
    now = time.time() if now is None else now
    expire = charge.get("time_expire")
    expired = isinstance(expire, int) and not isinstance(expire, bool) and 0 < expire <= now
    if charge.get("paid") is True:
        state = PAYMENT_SUCCEEDED
    elif expired or charge.get("reversed") is True:
        state = PAYMENT_CLOSED
    elif charge.get("failure_code"):
        state = PAYMENT_FAILED
    else:
        state = PAYMENT_PENDING
    currency = _text(charge, "currency")
    if not currency:
        raise _Malformed("charge has no currency")
    return PaymentState(
        provider_payment_id=charge_id,
        state=state,
        amount=_integer(charge, "amount"),
        currency=currency.lower(),
        attempt_bid=_text(charge, "order_no"),
        order_bid=str(_metadata(charge).get("order_bid") or ""),
        livemode=_livemode(charge),
        app_id=_text(charge, "app"),
        paid_at=_timestamp(charge, "time_paid"),
        transaction_no=_text(charge, "transaction_no"),
        failure_code=_text(charge, "failure_code"),
        failure_message=_text(charge, "failure_msg"),
        raw=dict(charge),
    )


def refund_state_of(
    refund: Mapping[str, Any], *, livemode: bool | None = None, default_status: str = ""
) -> RefundState:
    """The normalised state of a Ping++ refund object."""
    refund_id = _identifier(refund, "refund")
    status = _text(refund, "status") or default_status
    if status not in REFUND_STATUSES:
        raise _Malformed(f"refund has an unknown status {status!r}")
    charge_id = _text(refund, "charge")
    if not charge_id:
        raise _Malformed("refund names no charge")
    return RefundState(
        provider_refund_id=refund_id,
        provider_payment_id=charge_id,
        state=REFUND_STATUSES[status],
        amount=_integer(refund, "amount"),
        currency=(_text(refund, "currency") or "cny").lower(),
        refund_bid=str(_metadata(refund).get("refund_bid") or ""),
        livemode=_livemode(refund) if livemode is None else livemode,
        failure_code=_text(refund, "failure_code"),
        failure_message=_text(refund, "failure_msg"),
        raw=dict(refund),
    )


def _client_data(method: str, charge: Any) -> dict[str, Any]:
    credential = charge.get("credential") if isinstance(charge, Mapping) else None
    credential = dict(credential) if isinstance(credential, Mapping) else {}
    field = QR_FIELDS.get(method or "")
    qr_url = credential.get(field) if field else ""
    return {"credential": credential, "qr_url": qr_url if isinstance(qr_url, str) else ""}


def _translate(exc: pingpp_error.PingppError, operation: str) -> ProviderError:
    """The project error for an SDK error: unavailable, refused, or unreadable."""
    status = exc.http_status if isinstance(exc.http_status, int) else None
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error_object = body.get("error") if isinstance(body.get("error"), dict) else None
    details: dict[str, Any] = {
        "operation": operation,
        "http_status": status,
        "provider_message": (str(exc) or "")[:MESSAGE_MAX],
    }
    # Not "code": ServiceError takes that keyword as the error's own code.
    provider_code = getattr(exc, "code", None) or (error_object or {}).get("code")
    if provider_code:
        details["provider_code"] = str(provider_code)
    if error_object and error_object.get("type"):
        details["provider_error_type"] = str(error_object["type"])
    if getattr(exc, "param", None):
        details["param"] = str(exc.param)
    logger.warning(
        "Ping++ %s failed: %s (HTTP %s, code %s)",
        operation,
        type(exc).__name__,
        status,
        details.get("provider_code", "-"),
        extra={"channel": CHANNEL, "operation": operation, "http_status": status},
    )
    refused = (
        pingpp_error.InvalidRequestError,
        pingpp_error.AuthenticationError,
        pingpp_error.ChannelError,
    )
    if isinstance(exc, pingpp_error.RateLimitError):
        # Too many requests: nothing was done, and the same request may pass later.
        return ProviderUnavailable("Ping++ is rate limiting requests.", channel=CHANNEL, **details)
    if isinstance(exc, pingpp_error.APIConnectionError):
        return ProviderUnavailable("Ping++ could not be reached.", channel=CHANNEL, **details)
    if isinstance(exc, refused):
        message = details["provider_message"] or "no reason given"
        return ProviderRequestRefused(
            f"Ping++ refused the request: {message}", channel=CHANNEL, **details
        )
    if isinstance(exc, pingpp_error.APIError) and (status is None or status >= 500):
        return ProviderUnavailable(
            f"Ping++ answered HTTP {status or 'without a status'}.", channel=CHANNEL, **details
        )
    if isinstance(exc, pingpp_error.APIError) and error_object and 400 <= (status or 0) < 500:
        return ProviderRequestRefused(
            f"Ping++ refused the request: {details['provider_message']}",
            channel=CHANNEL,
            **details,
        )
    return ProviderBadResponse("Ping++ answered something unreadable.", channel=CHANNEL, **details)


class PingxxProvider:
    """Ping++ charges (QR, PC and WeChat in-app methods), refunds and webhooks."""

    channel: ClassVar[str] = CHANNEL
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
        self._webhook_key, self._webhook_problem = self._load_webhook_key()

    # ---- configuration ----

    def _configure_sdk(self) -> None:
        # Only the SDK's requests client passes a CA bundle and a connect timeout on:
        # urlfetch and urllib ignore both, pycurl would not take a (connect, read) pair.
        if pingpp_http_client.urlfetch is not None or pingpp_http_client.requests is None:
            raise ImproperlyConfigured(
                "The Ping++ SDK must send through the requests library, the only one "
                "of its clients that honours the CA bundle and both timeouts."
            )
        try:
            pem, source = read_pem("PINGXX_PRIVATE_KEY", "PINGXX_PRIVATE_KEY_PATH")
        except KeyUnreadable as exc:
            raise ImproperlyConfigured(str(exc)) from None
        if pem:
            try:
                key = RSA.import_key(pem)
            except (ValueError, IndexError, TypeError):
                key = None
            if key is None or not key.has_private():
                raise ImproperlyConfigured(f"{source} does not hold an RSA private key.")
        pingpp.api_base = settings.PINGXX_API_BASE.rstrip("/")
        pingpp.api_key = settings.PINGXX_SECRET_KEY or None
        pingpp.app_id = self.app_id or None
        pingpp.private_key = pem or None
        pingpp.private_key_path = None
        pingpp.verify_ssl_certs = True
        pingpp.ca_bundle = certifi.where()
        pingpp.proxy = None
        pingpp.connect_timeout = self.connect_timeout
        pingpp.timeout = (self.connect_timeout, self.read_timeout)
        pingpp.max_network_retries = self.max_network_retries
        pingpp.log = None  # no console logging of request bodies

    @staticmethod
    def _load_webhook_key() -> tuple[RSA.RsaKey | None, str]:
        try:
            pem, source = read_pem("PINGXX_WEBHOOK_PUBLIC_KEY", "PINGXX_WEBHOOK_PUBLIC_KEY_PATH")
        except KeyUnreadable as exc:
            return None, str(exc)
        if not pem:
            return None, "PINGXX_WEBHOOK_PUBLIC_KEY (or _PATH) is not set."
        try:
            return RSA.import_key(pem), ""
        except (ValueError, IndexError, TypeError):
            return None, f"{source} does not hold an RSA public key."

    # ---- attempt rows ----

    def build_attempt(self, request: PaymentRequest) -> PingxxOrder:
        subject, body = self._subject_and_body(request)
        return PingxxOrder(
            pingxx_order_bid=request.attempt_bid,
            transaction_no=request.attempt_bid,
            order_bid=request.order_bid,
            user_bid=request.user_bid,
            product_bid=request.product_bid,
            app_id=self.app_id,
            channel=request.method,
            amount=request.amount,
            currency=request.currency.upper(),
            subject=subject,
            body=body,
            client_ip=request.client_ip,
            extra=json.dumps(self._extra(request)),
            status=AttemptStatus.PENDING,
            charge_id="",
        )

    def apply_start(self, attempt: PingxxOrder, start: PaymentStart) -> list[str]:
        attempt.charge_id = start.provider_payment_id
        attempt.charge_object = json.dumps(_plain(start.raw))
        return ["charge_id", "charge_object", "updated_at"]

    def apply_payment_state(self, attempt: PingxxOrder, state: PaymentState) -> list[str]:
        changed: list[str] = []
        if state.provider_payment_id and not attempt.charge_id:
            attempt.charge_id = state.provider_payment_id
            changed.append("charge_id")
        if state.raw:
            attempt.charge_object = json.dumps(_plain(state.raw))
            changed.append("charge_object")
        if state.paid_at is not None:
            attempt.paid_at = state.paid_at
            changed.append("paid_at")
        if state.failure_code or state.failure_message:
            attempt.failure_code = state.failure_code[:FAILURE_MAX]
            attempt.failure_msg = state.failure_message[:FAILURE_MAX]
            changed += ["failure_code", "failure_msg"]
        # The legacy columns default to the creation time; set them when the state is
        # first seen (the services set status afterwards), not on every repetition.
        if state.state == PAYMENT_FAILED and attempt.status != AttemptStatus.FAILED:
            attempt.failed_at = timezone.now()
            changed.append("failed_at")
        if state.state == PAYMENT_CLOSED and attempt.status != AttemptStatus.CLOSED:
            attempt.closed_at = _timestamp(state.raw, "time_expire") or timezone.now()
            changed.append("closed_at")
        return [*changed, "updated_at"] if changed else []

    def attempts_for(
        self, *, attempt_bid: str = "", provider_payment_id: str = ""
    ) -> QuerySet[PingxxOrder]:
        condition = Q()
        if attempt_bid:
            condition |= Q(transaction_no=attempt_bid)  # see PingxxOrder.attempt_bid
        if provider_payment_id:
            condition |= Q(charge_id=provider_payment_id)
        if not condition:
            return PingxxOrder.objects.none()
        return PingxxOrder.objects.filter(condition)

    def client_data(self, attempt: PingxxOrder) -> Mapping[str, Any]:
        charge = attempt.charge
        method = attempt.channel or (charge.get("channel") if isinstance(charge, dict) else "")
        return _client_data(method, charge)

    # ---- payments ----

    def start_payment(self, request: PaymentRequest) -> PaymentStart:
        self._check_currency(request.currency)
        extra = self._extra(request)
        subject, body = self._subject_and_body(request)
        metadata = {
            **request.metadata,
            "order_bid": request.order_bid,
            "attempt_bid": request.attempt_bid,
        }
        expiry = {}
        if request.expires_at is not None:
            expiry["time_expire"] = int(request.expires_at.timestamp())
        charge = self._call(
            "create_charge",
            pingpp.Charge.create,
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
            metadata=metadata,
        )
        state = self._api_value(payment_state_of, charge)
        client_data = _client_data(request.method, charge)
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
        charge = self._call("retrieve_charge", pingpp.Charge.retrieve, provider_payment_id)
        return self._api_value(payment_state_of, charge)

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
        method = attempt.channel or _text(stored if isinstance(stored, Mapping) else {}, "channel")
        state: PaymentState | None = None
        if method in REVERSIBLE_METHODS:
            try:
                charge = self._call("reverse_charge", pingpp.Charge.reverse, charge_id)
            except ProviderRequestRefused:
                pass  # _translate logged why; the charge says what it is now
            else:
                state = self._api_value(payment_state_of, charge)
        if state is None:
            state = self.fetch_payment(charge_id)
        if state.state == PAYMENT_FAILED:
            # Nothing closed it, and a failed try does not: it may be paid until it expires.
            state = replace(state, state=PAYMENT_PENDING)
        return state

    # ---- refunds ----

    def refund(self, request: RefundRequest) -> RefundState:
        self._check_currency(request.currency)
        refund = self._call(
            "create_refund",
            pingpp.Charge.refund,
            request.provider_payment_id,
            amount=request.amount,
            description=_clean_text(request.reason, DESCRIPTION_MAX) or "Refund",
            metadata={"refund_bid": request.refund_bid},
        )
        return self._api_value(refund_state_of, refund)

    def fetch_refund(self, provider_payment_id: str, provider_refund_id: str) -> RefundState:
        refund = self._call(
            "retrieve_refund",
            pingpp.Charge.retrieve_refund,
            provider_payment_id,
            provider_refund_id,
        )
        return self._api_value(refund_state_of, refund)

    def find_refund(self, provider_payment_id: str, refund_bid: str) -> RefundState | None:
        """The refund whose metadata names ``refund_bid``, reading every page.

        Prefers a pending or succeeded refund over a failed one made for the same bid.
        Raises rather than answer None when the list cannot be read to its end, since
        None lets the caller refund again.
        """
        if not refund_bid:
            raise ValueError("find_refund needs a refund_bid.")
        found: list[RefundState] = []
        params: dict[str, Any] = {"limit": REFUND_PAGE_SIZE}
        for _ in range(REFUND_MAX_PAGES):
            page = self._call(
                "list_refunds", pingpp.Charge.list_refunds, provider_payment_id, **params
            )
            data = page.get("data") if page.get("object") == "list" else None
            if not isinstance(data, list):
                raise ProviderBadResponse(
                    "Ping++ answered a refund list without data.",
                    channel=CHANNEL,
                    operation="list_refunds",
                )
            for item in data:
                if isinstance(item, Mapping) and _metadata(item).get("refund_bid") == refund_bid:
                    found.append(self._api_value(refund_state_of, item))
            last_id = data[-1].get("id") if data and isinstance(data[-1], Mapping) else None
            if page.get("has_more") is not True:
                break
            if not isinstance(last_id, str) or not last_id:
                raise ProviderBadResponse(
                    "Ping++ announced more refunds but gave no id to page from.",
                    channel=CHANNEL,
                    operation="list_refunds",
                )
            params["starting_after"] = last_id
        else:
            raise ProviderBadResponse(
                f"Charge {provider_payment_id} has more than "
                f"{REFUND_PAGE_SIZE * REFUND_MAX_PAGES} refunds.",
                channel=CHANNEL,
                operation="list_refunds",
            )
        live = [refund for refund in found if refund.state != REFUND_FAILED]
        return (live or found or [None])[0]

    # ---- webhooks ----

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        if self._webhook_key is None:
            raise WebhookNotConfigured(
                f"Ping++ webhooks cannot be verified: {self._webhook_problem}", channel=CHANNEL
            )
        body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self._verify_signature(body, _header(headers, SIGNATURE_HEADER))
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookPayloadInvalid("The webhook body is not JSON.", channel=CHANNEL) from None
        try:
            return self._event(event)
        except _Malformed as exc:
            raise WebhookPayloadInvalid(
                f"The webhook body is not a Ping++ event: {exc}.", channel=CHANNEL
            ) from None

    def _verify_signature(self, body: bytes, signature: str) -> None:
        if not signature:
            raise WebhookSignatureInvalid(
                "The webhook carries no signature.", channel=CHANNEL, signature="missing"
            )
        try:
            raw_signature = base64.b64decode(signature.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise WebhookSignatureInvalid(
                "The webhook signature is not base64.", channel=CHANNEL, signature="malformed"
            ) from None
        try:
            pkcs1_15.new(self._webhook_key).verify(SHA256.new(body), raw_signature)
        except (ValueError, TypeError):
            raise WebhookSignatureInvalid(
                "The webhook signature does not match its body.",
                channel=CHANNEL,
                signature="mismatch",
            ) from None

    def _event(self, event: Any) -> ProviderEvent:
        if not isinstance(event, dict):
            raise _Malformed("not an object")
        event_id, event_type = event.get("id"), event.get("type")
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
            raise _Malformed("no id or type")
        if not isinstance(obj, dict):
            raise _Malformed("no data.object")
        livemode = _livemode(event)
        common = {"event_id": event_id, "event_type": event_type, "livemode": livemode}
        if event_type == "charge.succeeded":
            payment = payment_state_of(obj)
            if payment.state != PAYMENT_SUCCEEDED:
                raise _Malformed("charge.succeeded for a charge that is not paid")
            return ProviderEvent(kind=EVENT_PAYMENT, payment=payment, raw=event, **common)
        if event_type.startswith("refund."):
            refund = refund_state_of(
                obj, livemode=livemode, default_status=event_type.partition(".")[2]
            )
            return ProviderEvent(kind=EVENT_REFUND, refund=refund, raw=event, **common)
        return ProviderEvent(kind=EVENT_OTHER, raw=event, **common)

    # ---- helpers ----

    def _check_currency(self, currency: str) -> None:
        if (currency or "").lower() != "cny":
            raise CurrencyNotSupported(
                f"Ping++ takes only CNY, not {currency!r}.", channel=CHANNEL, currency=currency
            )

    def _extra(self, request: PaymentRequest) -> dict[str, str]:
        """The channel extras Ping++ needs for the method; refuses what lacks them."""
        method = request.method
        if method not in self.methods:
            raise PaymentMethodInvalid(
                f"Ping++ has no method {method!r}; it has {', '.join(self.methods)}.",
                channel=CHANNEL,
                method=method,
            )
        required = {
            "wx_pub_qr": ("product_id", request.product_bid),
            "alipay_pc_direct": ("success_url", request.success_url),
            "wx_pub": ("open_id", request.open_id),
        }
        if method in required:
            name, value = required[method]
            if not value:
                raise PaymentMethodInvalid(
                    f"Ping++ method {method} needs {name}.",
                    channel=CHANNEL,
                    method=method,
                    missing=name,
                )
            return {name: value}
        if method == "wx_wap" and request.success_url:
            return {"result_url": request.success_url}
        return {}

    @staticmethod
    def _subject_and_body(request: PaymentRequest) -> tuple[str, str]:
        subject = _clean_text(request.subject, SUBJECT_MAX)
        # Ping++ requires a body; the subject stands in for an empty one.
        body = _clean_text(request.body, BODY_MAX) or _clean_text(request.subject, BODY_MAX)
        return subject, body

    @staticmethod
    def _call(operation: str, function: Callable[..., Any], *args: Any, **params: Any) -> Any:
        """Call the SDK; its errors become project errors, its result plain data."""
        try:
            result = function(*args, **params)
        except pingpp_error.PingppError as exc:
            raise _translate(exc, operation) from exc
        return _plain(result)

    @staticmethod
    def _api_value(build: Callable[..., Any], obj: Any) -> Any:
        try:
            return build(obj)
        except _Malformed as exc:
            raise ProviderBadResponse(
                f"Ping++ answered something unreadable: {exc}.", channel=CHANNEL
            ) from None


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever the mapping's case (or WSGI ``HTTP_`` form)."""
    wanted = name.lower()
    for key, value in headers.items():
        normal = str(key).lower().replace("_", "-")
        if normal in (wanted, f"http-{wanted}"):
            return str(value or "")
    return ""
