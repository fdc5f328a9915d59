"""The one interface every payment channel implements, and the values it exchanges.

Requests and results are frozen dataclasses; amounts are integers in minor units with a
lower-case ISO 4217 currency. A decline is data in a result; an outage, a refused request
or a bad response raises a typed error derived from ``ProviderError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from payments_project.errors import ServiceError

# ---- Normalised states ----

PAYMENT_PENDING = "pending"
PAYMENT_SUCCEEDED = "succeeded"
PAYMENT_FAILED = "failed"
PAYMENT_CLOSED = "closed"  # expired or cancelled at the provider, nothing was paid
PAYMENT_STATES = (PAYMENT_PENDING, PAYMENT_SUCCEEDED, PAYMENT_FAILED, PAYMENT_CLOSED)

REFUND_PENDING = "pending"
REFUND_SUCCEEDED = "succeeded"
REFUND_FAILED = "failed"
REFUND_STATES = (REFUND_PENDING, REFUND_SUCCEEDED, REFUND_FAILED)

# Normalised event kinds a webhook is parsed into.
EVENT_PAYMENT = "payment"  # carries a PaymentState
EVENT_REFUND = "refund"  # carries a RefundState
EVENT_OTHER = "other"  # verified, but nothing this service applies


# ---- Errors ----


class ProviderError(ServiceError):
    """Base of the errors a provider raises; ``channel`` names the provider."""

    code = "provider_error"
    http_status = 502

    def __init__(self, message: str, *, channel: str, **details: object) -> None:
        super().__init__(message, **details)
        self.channel = channel


class ProviderUnavailable(ProviderError):
    """The provider could not be reached, timed out, or answered 5xx: try again later."""

    code = "provider_unavailable"
    http_status = 503


class ProviderRequestRefused(ProviderError):
    """The provider refused the request (bad parameters, authentication, limits)."""

    code = "provider_refused"
    http_status = 502


class ProviderBadResponse(ProviderError):
    """The provider answered something this service cannot read."""

    code = "provider_bad_response"
    http_status = 502


class PaymentMethodInvalid(ProviderError):
    """The method is unknown to the channel, or lacks what it needs (an open id, a URL)."""

    code = "payment_method_invalid"
    http_status = 400


class CurrencyNotSupported(ProviderError):
    code = "currency_not_supported"
    http_status = 400


class WebhookRejected(ProviderError):
    """A webhook delivery that is refused before anything is applied."""

    code = "webhook_rejected"
    http_status = 400


class WebhookSignatureInvalid(WebhookRejected):
    code = "webhook_signature_invalid"
    http_status = 401


class WebhookPayloadInvalid(WebhookRejected):
    code = "webhook_payload_invalid"
    http_status = 400


class WebhookNotConfigured(WebhookRejected):
    """No verification key is configured: every delivery is refused."""

    code = "webhook_not_configured"
    http_status = 503


# ---- Values ----


@dataclass(frozen=True)
class PaymentRequest:
    channel: str
    method: str
    order_bid: str
    attempt_bid: str  # our attempt row's business id: Ping++ order_no, Stripe metadata
    user_bid: str
    product_bid: str
    amount: int
    currency: str
    subject: str
    body: str
    client_ip: str = "127.0.0.1"
    success_url: str = ""
    cancel_url: str = ""
    open_id: str = ""  # WeChat payer open id (wx_pub)
    # The creator's merchant account the payment goes to ("" : the platform's); kept on
    # the attempt where its table has room, so that its news is verified with those keys.
    integration_bid: str = ""
    expires_at: datetime | None = None  # when the order times out: pay before this
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentStart:
    """What creating a payment at the provider gave: its id and what the client needs."""

    provider_payment_id: str
    state: str
    client_data: Mapping[str, Any]  # credential / qr_url, client_secret, checkout_url...
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class PaymentState:
    """A payment as the provider sees it now."""

    provider_payment_id: str
    state: str
    amount: int
    currency: str
    attempt_bid: str = ""
    order_bid: str = ""
    livemode: bool | None = None
    app_id: str = ""
    paid_at: datetime | None = None
    transaction_no: str = ""
    failure_code: str = ""
    failure_message: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRequest:
    channel: str
    refund_bid: str
    provider_payment_id: str
    amount: int
    currency: str
    reason: str


@dataclass(frozen=True)
class RefundState:
    """A refund as the provider sees it now."""

    provider_refund_id: str
    provider_payment_id: str
    state: str
    amount: int
    currency: str = ""
    refund_bid: str = ""
    livemode: bool | None = None
    failure_code: str = ""
    failure_message: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderEvent:
    """A verified webhook, normalised. ``kind`` says which of payment/refund is set."""

    event_id: str
    event_type: str  # the provider's own type, e.g. charge.succeeded
    kind: str
    livemode: bool | None
    payment: PaymentState | None = None
    refund: RefundState | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


def closed_before_creation(attempt: Any) -> PaymentState:
    """The answer of ``close_payment`` for an attempt that has no payment at the provider
    (its start failed or never ran): nothing can be paid, so it is closed, and nothing
    needs to be called."""
    return PaymentState(
        provider_payment_id="",
        state=PAYMENT_CLOSED,
        amount=attempt.amount,
        currency=attempt.currency_code,
        attempt_bid=attempt.attempt_bid,
        order_bid=attempt.order_bid,
    )


# ---- The protocol ----


@runtime_checkable
class AttemptRows(Protocol):
    """The row mapping: a channel's answers onto its attempt model (``PingxxOrder``,
    ``StripeOrder``...). It only reads and sets fields; ``payments.attempts`` saves them,
    in the services' transactions. Attempt rows expose ``attempt_bid``, ``order_bid``,
    ``provider_payment_id``, ``amount`` (minor units), ``currency_code`` and ``status``
    (``payments.models.AttemptStatus``)."""

    attempt_model: ClassVar[type]

    def build_attempt(self, request: PaymentRequest) -> Any:
        """A new, unsaved, pending attempt row for ``request``."""

    def apply_start(self, attempt: Any, start: PaymentStart) -> list[str]:
        """Record what creating the payment gave; returns the fields changed."""

    def apply_payment_state(self, attempt: Any, state: PaymentState) -> list[str]:
        """Record the provider's view of the payment (ids, raw object, failure, times).

        Does not set ``status``: ``payments.attempts`` does, under the order's lock.
        """

    def attempts_for(self, *, attempt_bid: str = "", provider_payment_id: str = "") -> Any:
        """A queryset of the channel's attempt rows matching either id."""

    def client_data(self, attempt: Any) -> Mapping[str, Any]:
        """What the client needs to pay a pending attempt again (QR URL, client secret)."""


@runtime_checkable
class PaymentGateway(Protocol):
    """The SDK adapter: the provider's API, answered in this module's values."""

    channel: ClassVar[str]
    methods: ClassVar[tuple[str, ...]]
    default_method: ClassVar[str]
    currencies: ClassVar[frozenset[str] | None]  # None: any currency of payments_project.money
    # The mode and app this configuration takes events for; the inbox refuses an event
    # of another. None / "": the channel has no such notion.
    livemode: bool | None
    app_id: str
    # True: a delivery is stored whole with the header that signs it, and verified again
    # when it is read back. False: verified once, when received (Stripe's signatures
    # expire after 300 s), and stored as parsed, without what must never be kept; a
    # stored event is read back with event_from_payload.
    signature_kept: bool
    # True: a signed delivery refused for what it says (another mode, not readable as
    # an event of ours) is recorded and answered 200, since the provider would retry
    # it for days and then disable the endpoint (Stripe). False: answered 4xx.
    refusal_acknowledged: bool

    def start_payment(self, request: PaymentRequest) -> PaymentStart:
        """Create the payment at the provider; idempotent per ``attempt_bid``."""

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify the signature and parse; raises a WebhookRejected subclass."""

    def event_from_payload(self, payload: Mapping[str, Any]) -> ProviderEvent:
        """A stored event, verified when it was received, parsed again from its JSON
        without a signature (as ``parse_webhook`` parses it once verified); raises
        WebhookPayloadInvalid."""

    def refund(self, request: RefundRequest) -> RefundState:
        """Start a refund; idempotent per ``refund_bid`` where the provider allows it."""

    def fetch_payment(self, provider_payment_id: str) -> PaymentState:
        """The current state of a payment, for sync and reconciliation."""

    def fetch_refund(self, provider_payment_id: str, provider_refund_id: str) -> RefundState:
        """The current state of a refund, for reconciliation."""

    def find_refund(self, provider_payment_id: str, refund_bid: str) -> RefundState | None:
        """The refund made for ``refund_bid``, if the provider has one (before a retry)."""

    def close_payment(self, attempt: Any) -> PaymentState:
        """Close a pending payment at the provider so that it can no longer be paid
        (the order was cancelled or timed out). Returns the payment's state afterwards:
        PAYMENT_CLOSED once closed; PAYMENT_SUCCEEDED (with amount/currency/ids, as
        fetch_payment returns it) when it was paid meanwhile and could not be closed;
        PAYMENT_PENDING when the channel has no close call for this method and it can
        still be paid until it expires. Raises ProviderError (ProviderUnavailable etc.)
        when the provider cannot be asked now; the caller retries later.

        ``attempt`` is the channel's attempt row; it is read, never saved. Closing a
        payment already closed, cancelled or expired answers PAYMENT_CLOSED; an attempt
        with no payment at the provider yet answers it without any call.
        """


@runtime_checkable
class PaymentProvider(PaymentGateway, AttemptRows, Protocol):
    """A payment channel, as the registry builds it: its gateway and its row mapping
    (a provider built from the two parts mixes in ``RowsDelegated``)."""


class RowsDelegated:
    """The protocol's attempt-row half, delegated to ``self.rows``: a provider built as an
    SDK adapter plus a row mapping (``stripe/rows.py``, ``pingxx/rows.py``) mixes this in."""

    rows: Any

    def build_attempt(self, request: PaymentRequest) -> Any:
        return self.rows.build_attempt(request)

    def apply_start(self, attempt: Any, start: PaymentStart) -> list[str]:
        return self.rows.apply_start(attempt, start)

    def apply_payment_state(self, attempt: Any, state: PaymentState) -> list[str]:
        return self.rows.apply_payment_state(attempt, state)

    def attempts_for(self, *, attempt_bid: str = "", provider_payment_id: str = "") -> Any:
        return self.rows.attempts_for(
            attempt_bid=attempt_bid, provider_payment_id=provider_payment_id
        )

    def client_data(self, attempt: Any) -> Mapping[str, Any]:
        return self.rows.client_data(attempt)


# What the registry's system check looks for on a provider class.
PROVIDER_ATTRIBUTES = (
    "channel", "methods", "default_method", "currencies", "attempt_model", "livemode",
    "app_id", "signature_kept", "refusal_acknowledged",
    "build_attempt", "apply_start", "apply_payment_state", "attempts_for", "client_data",
    "start_payment", "parse_webhook", "event_from_payload", "refund", "fetch_payment",
    "fetch_refund", "find_refund", "close_payment",
)  # fmt: skip
