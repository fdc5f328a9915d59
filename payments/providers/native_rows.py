"""The row mapping of the native Alipay and WeChat Pay channels, onto the platform's own
tables (``order_alipay_orders``, ``order_wechatpay_orders``), written as the platform
writes them: our attempt id is the merchant order number sent to the provider
(``out_trade_no``), kept both as the row's business id and as ``provider_attempt_id``;
the provider's own number (``trade_no``, ``transaction_id``) is ``transaction_id`` once
known. Rows the platform wrote (its out_trade_no a uuid per try, as ours) are found the
same way, so its unpaid and paid attempts settle, refund and reconcile here.

Only fields are read and set here; ``payments.attempts`` saves the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from payments.models import ORDER_DOMAIN, AttemptStatus
from payments.native import CLIENT_DATA_KEY, EXPIRES_KEY, INTEGRATION_KEY, NativeAttempt
from payments.providers.base import PaymentRequest, PaymentStart, PaymentState
from payments.providers.payloads import plain
from payments_project.db import Deleted

RAW_STATUS_MAX = 64


class NativeRows:
    """Attempt rows of one native channel (``model``: AlipayOrder or WechatpayOrder)."""

    def __init__(self, model: type[NativeAttempt]) -> None:
        self.model = model

    def build_attempt(self, request: PaymentRequest) -> NativeAttempt:
        now = timezone.now()
        return self.model(
            **{self.model.attempt_bid_field: request.attempt_bid},
            biz_domain=ORDER_DOMAIN,
            bill_order_bid="",
            creator_bid="",
            user_bid=request.user_bid,
            product_bid=request.product_bid,
            order_bid=request.order_bid,
            provider_attempt_id=request.attempt_bid,
            transaction_id="",
            channel=request.method,
            amount=request.amount,
            currency=request.currency.upper(),
            status=AttemptStatus.PENDING,
            raw_status="pending",
            raw_request={},
            raw_response={},
            raw_notification={},
            metadata={
                "subject": request.subject,
                "body": request.body,
                EXPIRES_KEY: request.expires_at.isoformat() if request.expires_at else "",
                INTEGRATION_KEY: request.integration_bid,
            },
            deleted=Deleted.ACTIVE,
            created_at=now,
            updated_at=now,
        )

    def apply_start(self, attempt: NativeAttempt, start: PaymentStart) -> list[str]:
        attempt.raw_response = plain(dict(start.raw))
        attempt.metadata = {**attempt.metadata_map, CLIENT_DATA_KEY: plain(dict(start.client_data))}
        attempt.updated_at = timezone.now()
        return ["raw_response", "metadata", "updated_at"]

    def apply_payment_state(self, attempt: NativeAttempt, state: PaymentState) -> list[str]:
        changed: list[str] = []
        if state.transaction_no and attempt.transaction_id != state.transaction_no:
            attempt.transaction_id = state.transaction_no[:128]
            changed.append("transaction_id")
        raw_status = _raw_status(state)
        if raw_status and attempt.raw_status != raw_status:
            attempt.raw_status = raw_status
            changed.append("raw_status")
        if state.raw:
            attempt.raw_notification = plain(dict(state.raw))
            changed.append("raw_notification")
        if state.failure_code or state.failure_message:
            failure = {"code": state.failure_code, "message": state.failure_message}
            attempt.metadata = {**attempt.metadata_map, "failure": failure}
            changed.append("metadata")
        if changed:
            attempt.updated_at = timezone.now()
            changed.append("updated_at")
        return changed

    def attempts_for(
        self, *, attempt_bid: str = "", provider_payment_id: str = ""
    ) -> QuerySet[NativeAttempt]:
        condition = Q()
        if attempt_bid:
            condition |= Q(**{self.model.attempt_bid_field: attempt_bid})
        if provider_payment_id:
            condition |= Q(provider_attempt_id=provider_payment_id)
        if not condition:
            return self.model.objects.none()
        return self.model.objects.filter(condition, deleted=Deleted.ACTIVE).order_by("-id")

    def client_data(self, attempt: NativeAttempt) -> Mapping[str, Any]:
        kept = attempt.metadata_map.get(CLIENT_DATA_KEY)
        return dict(kept) if isinstance(kept, Mapping) else {}


def _raw_status(state: PaymentState) -> str:
    """The provider's own word for the state (TRADE_SUCCESS, NOTPAY...), else ours."""
    raw = state.raw if isinstance(state.raw, Mapping) else {}
    word = raw.get("trade_status") or raw.get("trade_state") or state.state
    return str(word)[:RAW_STATUS_MAX]
