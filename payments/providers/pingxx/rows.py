"""Ping++'s attempt rows (PingxxOrder, the legacy table): built, and updated from what
Ping++ says. Only fields are read and set here; the services save the rows."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from payments.models import AttemptStatus, PingxxOrder
from payments.providers.base import (
    PAYMENT_CLOSED,
    PAYMENT_FAILED,
    PaymentRequest,
    PaymentStart,
    PaymentState,
)
from payments.providers.payloads import plain, timestamp
from payments.providers.pingxx.params import channel_extra, subject_and_body
from payments.providers.pingxx.payloads import client_data_of

# Width of the legacy failure columns.
FAILURE_MAX = 255


class PingxxRows:
    """The row mapping of the pingxx channel; ``app_id`` is recorded on each row."""

    def __init__(self, *, app_id: str, methods: Sequence[str]) -> None:
        self.app_id = app_id
        self.methods = methods

    def build_attempt(self, request: PaymentRequest) -> PingxxOrder:
        subject, body = subject_and_body(request)
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
            extra=json.dumps(channel_extra(request, self.methods)),
            status=AttemptStatus.PENDING,
            charge_id="",
        )

    def apply_start(self, attempt: PingxxOrder, start: PaymentStart) -> list[str]:
        attempt.charge_id = start.provider_payment_id
        attempt.charge_object = json.dumps(plain(start.raw))
        return ["charge_id", "charge_object", "updated_at"]

    def apply_payment_state(self, attempt: PingxxOrder, state: PaymentState) -> list[str]:
        changed: list[str] = []
        if state.provider_payment_id and not attempt.charge_id:
            attempt.charge_id = state.provider_payment_id
            changed.append("charge_id")
        if state.raw:
            attempt.charge_object = json.dumps(plain(state.raw))
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
            attempt.closed_at = timestamp(state.raw, "time_expire") or timezone.now()
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
        return client_data_of(method, charge)
