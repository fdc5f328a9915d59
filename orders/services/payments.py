"""Paying an order: the attempt row first, then the provider, then its answer
(``payment_start``); asking the provider again (``payment_sync``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from orders.errors import OrderExpired, OrderNotPayable
from orders.models import Order, OrderEventKind, Product, new_bid
from orders.services.lifecycle import (
    PAYABLE,
    S,
    _expired,
    _lock,
    answer_about,
    attempt_fetched,
    attempt_provider,
    native_attempts_pin,
    order_event_write,
    order_set_status,
)
from orders.services.orders import order_timeout
from orders.services.payment_results import _attempt_close, payment_apply
from payments import attempts, integrations, registry
from payments.providers.base import (
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    CurrencyNotSupported,
    PaymentRequest,
    PaymentState,
    ProviderError,
)
from payments_project.money import to_minor

# The package keeps the one logger name it had as a module.
logger = logging.getLogger("orders.services")


@dataclass(frozen=True)
class PaymentStarted:
    order: Order
    attempt: Any
    channel: str
    method: str
    client_data: dict


def payment_start(
    *,
    order: Order,
    channel: str | None = None,
    method: str | None = None,
    client_ip: str = "127.0.0.1",
    success_url: str = "",
    cancel_url: str = "",
    open_id: str = "",
    actor: Any = None,
) -> PaymentStarted:
    """Start paying ``order``: an attempt row first, then the provider, then its answer."""
    channel, method = registry.resolve(channel, method, fallback=order.payment_channel)
    provider = registry.get_provider(channel)  # refuses a channel that is not enabled
    if order.status in PAYABLE and _expired(order):
        order_timeout(order=order)
        raise OrderExpired(f"Order {order.order_bid} has expired.", order_bid=order.order_bid)

    with transaction.atomic():
        locked = _lock(order)
        if locked.status not in PAYABLE:
            raise OrderNotPayable(
                f"Order {locked.order_bid} is {locked.status_name}; it cannot be paid.",
                order_bid=locked.order_bid,
                status=locked.status_name,
            )
        if provider.currencies is not None and locked.currency not in provider.currencies:
            raise CurrencyNotSupported(
                f"The {channel} channel does not take {locked.currency.upper()}.",
                channel=channel,
            )
        # The creator's own merchant account on this channel, or the platform's: chosen
        # now and kept on the order and on the attempt (as the platform does at each
        # charge); what was started through another account is settled with its keys.
        integration = integrations.for_new_payment(creator_bid=locked.creator_bid, channel=channel)
        if integration != locked.payment_integration_bid:
            native_attempts_pin(locked)
        provider = registry.provider_of(channel, integration)
        product = Product.objects.filter(product_bid=locked.product_bid).first()
        name = product.name if product else "Course"
        request = PaymentRequest(
            channel=channel,
            method=method,
            order_bid=locked.order_bid,
            attempt_bid=new_bid(),
            user_bid=locked.user_bid,
            product_bid=locked.product_bid,
            amount=to_minor(locked.due_price, locked.currency),
            currency=locked.currency,
            subject=name,
            body=f"{name} ({locked.order_bid})",
            client_ip=client_ip,
            success_url=success_url,
            cancel_url=cancel_url,
            open_id=open_id,
            expires_at=locked.created_at + timedelta(seconds=settings.PAY_ORDER_EXPIRE_SECONDS),
            metadata={"order_bid": locked.order_bid},
            integration_bid=integration,
        )
        attempt, _ = attempts.attempt_create(provider, request)
        changes = {"payment_channel": channel, "payment_integration_bid": integration}
        if locked.status == S.INIT:
            order_set_status(
                order=locked,
                to=S.UNPAID,
                source="api",
                actor=actor,
                message=f"payment started: {channel}:{method}",
                changes=changes,
                locked=True,
            )
        else:
            locked.payment_channel, locked.payment_integration_bid = channel, integration
            locked.save(update_fields=["payment_channel", "payment_integration_bid", "updated_at"])
        order_event_write(
            order=locked,
            kind=OrderEventKind.ATTEMPT,
            message=f"attempt {request.attempt_bid} via {channel}:{method}",
            source="api",
            actor=actor,
            data={"attempt_bid": request.attempt_bid, "amount": request.amount},
        )

    try:
        start = provider.start_payment(request)
    except ProviderError as exc:
        _attempt_failed(provider=provider, attempt=attempt, request=request, error=exc)
        raise
    with transaction.atomic():
        now = _lock(request.order_bid)
        attempt = attempts.attempt_locked(provider, attempt_bid=request.attempt_bid)
        # Cancelled or timed out while the provider was being asked: the payment now
        # exists there, so it is closed like any other attempt of a dead order (one
        # closed unseen is pending again, for reconciliation to close if this fails).
        dead = now.status in (S.TIMEOUT, S.CANCELLED) and start.state != PAYMENT_SUCCEEDED
        attempts.attempt_started(provider, attempt, start, reopen=dead)
    if dead:
        try:
            _attempt_close(provider, attempt, source=channel)
        except ProviderError:
            logger.warning("attempt %s of a dead order not closed yet", attempt.attempt_bid)
        raise OrderNotPayable(
            f"Order {now.order_bid} was {now.status_name} while its payment was starting.",
            order_bid=now.order_bid,
            status=now.status_name,
        )
    if start.state == PAYMENT_SUCCEEDED:
        # Applied from the provider's own record, so its amount is checked too.
        state = provider.fetch_payment(start.provider_payment_id)
        state = answer_about(channel, attempt, state)
        payment_apply(channel=channel, state=state, source=channel)
        now.refresh_from_db()
    return PaymentStarted(
        order=now,
        attempt=attempt,
        channel=channel,
        method=method,
        client_data=dict(start.client_data),
    )


def _attempt_failed(*, provider, attempt, request: PaymentRequest, error: ProviderError) -> None:
    """Nothing can be paid on an attempt whose creation failed: mark it failed."""
    with transaction.atomic():
        order = _lock(request.order_bid)
        attempt = attempts.attempt_locked(provider, attempt_bid=request.attempt_bid)
        attempts.attempt_start_failed(
            provider,
            attempt,
            PaymentState(
                provider_payment_id="",
                state=PAYMENT_FAILED,
                amount=request.amount,
                currency=request.currency,
                attempt_bid=request.attempt_bid,
                failure_code=error.code,
                failure_message=error.message,
            ),
        )
        order_event_write(
            order=order,
            kind=OrderEventKind.ATTEMPT,
            message=f"attempt {request.attempt_bid} failed to start: {error.code}",
            source=provider.channel,
            data={"error": error.message},
        )


def payment_sync(*, order: Order, source: str = "sync") -> Order:
    """Ask the channel for the state of the order's latest attempt and apply it.

    An order of a channel without a provider (``free``, ``grant``) has nothing to ask:
    it is answered as it is. The channel is asked with the keys the order is paid
    through (a creator's own merchant account, or the platform's)."""
    if registry.attempt_model(order.payment_channel) is None:
        order.refresh_from_db()
        return order
    model = registry.attempt_model(order.payment_channel)
    recent = model.objects.filter(order_bid=order.order_bid).order_by("-id")[:10]
    attempt = next((a for a in recent if a.provider_payment_id), None)
    if attempt is None:
        order.refresh_from_db()
        return order
    provider = attempt_provider(order.payment_channel, attempt)
    state = attempt_fetched(provider, attempt)
    return payment_apply(channel=provider.channel, state=state, source=source)
