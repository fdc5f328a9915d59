"""The old frontend's seven endpoints, each the REST API's service call in the old shapes.

Authenticated and permitted as the REST API is (the default classes: the platform's
tokens, DRF tokens, sessions; signed in), throttled in the same scopes, and refused in
the old envelope. Left out of the OpenAPI schema: the REST API is the documented one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from orders import selectors, services
from orders.errors import AttemptNotFound
from orders.legacy_api import channels, codes, shapes
from orders.models import Order, OrderStatus
from orders.serializers import JsonTypes
from payments_project.views import api_not_found

ENDED_UNPAID = (OrderStatus.CANCELLED, OrderStatus.TIMEOUT)
LIVE = (OrderStatus.INIT, OrderStatus.UNPAID, OrderStatus.PAID)


def _text(*, required: bool = True, max_length: int = 80) -> serializers.CharField:
    if required:
        return serializers.CharField(max_length=max_length)
    return serializers.CharField(
        max_length=max_length, required=False, allow_blank=True, allow_null=True
    )


class CourseInput(JsonTypes, serializers.Serializer):
    course_id = _text(max_length=36)


class OrderInput(JsonTypes, serializers.Serializer):
    order_id = _text(max_length=36)


class DiscountInput(OrderInput):
    discount_code = _text(max_length=36)


class PayInput(OrderInput):
    channel = _text(required=False)
    payment_channel = _text(required=False)


class StripeSyncInput(OrderInput):
    session_id = _text(required=False, max_length=255)


class PaymentSyncInput(OrderInput):
    payment_channel = _text(required=False)


def _order(request: Request, order_bid: str) -> Order:
    """The order an old request names, among those the user may see (404 otherwise).

    The old frontend keeps the order id ``init-order`` gave it for the whole purchase,
    while this service replaces an unpaid order by a new one (a coupon applied, a price
    changed). So an order that ended unpaid stands for the newest live order of the same
    user and product made after it, when there is one.
    """
    order = get_object_or_404(selectors.orders_visible_to(request.user), order_bid=order_bid)
    if order.status in ENDED_UNPAID:
        newer = (
            Order.objects.live()
            .filter(
                user_bid=order.user_bid,
                product_bid=order.product_bid,
                status__in=LIVE,
                pk__gt=order.pk,
            )
            .order_by("-pk")
            .first()
        )
        return newer or order
    return order


def _snapshot(order: Order) -> dict[str, Any]:
    # A new order's discount lines, as priced (not read back); its status as stored.
    lines = getattr(order, "discount_lines", None)
    order.refresh_from_db()
    return shapes.order_snapshot(order, lines)


def _detail(order: Order) -> dict[str, Any]:
    attempt = selectors.order_latest_attempt(order)
    if attempt is None:
        raise AttemptNotFound(
            f"Order {order.order_bid} has no payment yet.", order_bid=order.order_bid
        )
    return shapes.payment_detail(order, attempt)


@extend_schema(exclude=True)
class LegacyView(APIView):
    """A POST of the old frontend: its input checked by ``input_class``, ``answer`` made
    into the envelope, every error too."""

    input_class: type[serializers.Serializer] = OrderInput
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = ""  # the REST API's: "orders" to create, "payments" to pay

    def dispatch(self, request, *args, **kwargs):
        if not settings.LEGACY_ORDER_API_ENABLED:
            return api_not_found(request)
        return super().dispatch(request, *args, **kwargs)

    def get_throttles(self):
        return super().get_throttles() if self.throttle_scope else []

    def get_exception_handler(self):
        return codes.exception_handler

    def post(self, request: Request):
        data = self.input_class(data=request.data)
        data.is_valid(raise_exception=True)
        return codes.envelope(self.answer(request, **data.validated_data))

    def answer(self, request: Request, **values: Any) -> dict[str, Any]:
        raise NotImplementedError


class InitOrderView(LegacyView):
    """``init-order``: the REST API's order create; the user's unpaid order of the
    course is reused."""

    input_class = CourseInput
    throttle_scope = "orders"

    def answer(self, request, *, course_id):
        order, _ = services.order_create(
            user_bid=selectors.user_bid_for(request.user),
            product_bid=course_id,
            actor=request.user,
        )
        return _snapshot(order)


class QueryOrderView(LegacyView):
    """``query-order``: the order as stored (no provider is asked, as before)."""

    def answer(self, request, *, order_id):
        return _snapshot(_order(request, order_id))


class ApplyDiscountView(LegacyView):
    """``apply-discount``: the REST API's order create with ``coupon_code``, which
    replaces the unpaid order by one holding the code (same code: the same order)."""

    input_class = DiscountInput
    throttle_scope = "orders"

    def answer(self, request, *, order_id, discount_code):
        named = _order(request, order_id)
        order, _ = services.order_create(
            user_bid=selectors.user_bid_for(request.user),
            product_bid=named.product_bid,
            actor=request.user,
            coupon_code=discount_code,
        )
        return _snapshot(order)


class RequireToPayView(LegacyView):
    """``reqiure-to-pay`` (sic): the REST API's pay, the old channel names translated."""

    input_class = PayInput
    throttle_scope = "payments"

    def answer(self, request, *, order_id, channel=None, payment_channel=None):
        order = _order(request, order_id)
        channel, method = channels.service_channel(channel or "", payment_channel or "")
        started = services.payment_start(
            order=order,
            channel=channel,
            method=method,
            client_ip=request.META.get("REMOTE_ADDR", "127.0.0.1"),
            actor=request.user,
        )
        return shapes.pay_result(started)


class PaymentDetailView(LegacyView):
    """``payment-detail``: the order's latest attempt, as stored."""

    def answer(self, request, *, order_id):
        return _detail(_order(request, order_id))


class StripeSyncView(LegacyView):
    """``stripe/sync``: the REST API's sync, then the payment detail. The session is
    the latest attempt's own; a ``session_id`` given is not needed."""

    input_class = StripeSyncInput

    def answer(self, request, *, order_id, session_id=None):
        return _detail(services.payment_sync(order=_order(request, order_id), source="api"))


class PaymentSyncView(LegacyView):
    """``payment/sync``: the REST API's sync on the order's channel, then the payment
    detail."""

    input_class = PaymentSyncInput

    def answer(self, request, *, order_id, payment_channel=None):
        return _detail(services.payment_sync(order=_order(request, order_id), source="api"))
