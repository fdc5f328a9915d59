"""The public API: products, orders (pay, sync, cancel) and refunds.

Views validate input with serializers and call services; they never touch a provider.
Errors answer with ``payments_project.errors.error_body``.
"""

from __future__ import annotations

from django import forms
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from bridge.models import Scope
from bridge.partners import ApiKeyAuthentication, Partner, has_scope
from orders import selectors, services
from orders.models import Order, OrderStatus, Product, RefundApproval
from orders.serializers import (
    OrderCreateSerializer,
    OrderDetailSerializer,
    OrderSerializer,
    PayResultSerializer,
    PaySerializer,
    ProductSerializer,
    ProductUpsertSerializer,
    RefundApprovalSerializer,
    RefundAwaitingApprovalSerializer,
    RefundCreateSerializer,
    RefundSerializer,
)
from payments_project.money import to_major
from payments_project.openapi import NO_NUL, errors


class NewestFirst(CursorPagination):
    """Cursor pages, newest first. A ``page_size`` that is not a whole number from 1 is
    refused (400); one above ``max_page_size`` gives that many."""

    ordering = "-id"
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
            raise ValidationError({self.page_size_query_param: ["A whole number from 1."]})
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Results per page, {self.page_size} by default, at most {self.max_page_size}."
                )
        return parameters


class ProductPermission(permissions.DjangoModelPermissionsOrAnonReadOnly):
    """Anyone may list products; staff with the model permission may add or change; a
    partner key with the ``products`` scope may upsert (PUT) them."""

    perms_map = {
        **permissions.DjangoModelPermissionsOrAnonReadOnly.perms_map,
        "PUT": ["%(app_label)s.add_%(model_name)s", "%(app_label)s.change_%(model_name)s"],
    }

    def has_permission(self, request, view):
        if isinstance(request.user, Partner):
            if request.method in permissions.SAFE_METHODS:
                return True
            return request.method == "PUT" and has_scope(request, Scope.PRODUCTS)
        return super().has_permission(request, view)


NOT_ENABLED = "the payment channel is not enabled here (`payment_channel` names it)"
METHOD_INVALID = (
    "the channel has no such method, or the method lacks what it needs (an `open_id`, "
    "a return URL on an allowed host) or belongs to another channel"
)


@extend_schema_view(
    partial_update=extend_schema(
        responses={
            200: ProductSerializer,
            **errors(
                409,
                price_does_not_fit_currency="the new price does not fit the product's "
                "currency, or the new currency its price (a JPY price has no cents)",
            ),
        }
    )
)
class ProductViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ProductSerializer
    # A user's credentials first: a partner key decides only for a request without them.
    authentication_classes = [*api_settings.DEFAULT_AUTHENTICATION_CLASSES, ApiKeyAuthentication]
    permission_classes = [ProductPermission]
    lookup_field = "product_bid"
    lookup_value_regex = r"[^/.]{1,36}"
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self):
        if self.request.user.has_perm("orders.change_product") or has_scope(
            self.request, Scope.PRODUCTS
        ):
            return Product.objects.order_by("name", "id")
        return selectors.products_on_sale()

    @extend_schema(
        request=ProductUpsertSerializer,
        responses={
            200: OpenApiResponse(ProductSerializer, "updated"),
            201: OpenApiResponse(ProductSerializer, "created with this product_bid"),
            **errors(400, 401, 403),
        },
        description="Create or update the product `product_bid` (a platform course): with "
        "an `X-Api-Key` of scope `products`, or as staff with the add and change "
        "permissions. Every field but `description` is given.",
    )
    def update(self, request, product_bid=None, partial=False):
        if partial:  # PATCH: staff change some fields of an existing product
            return super().update(request, product_bid=product_bid, partial=True)
        data = ProductUpsertSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product, created = services.product_upsert(product_bid=product_bid, **data.validated_data)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(ProductSerializer(product).data, status=code)


class FiltersNotBlank(forms.Form):
    """A filter given with no value is refused, as the schema says (an empty date or
    status is no date or status); ``payment_channel`` may be blank."""

    blank_allowed = frozenset({"payment_channel"})

    def clean(self):
        cleaned = super().clean()
        for name in self.fields:
            if name not in self.blank_allowed and self.data.get(name) == "":
                self.add_error(name, "Give a value, or leave the filter out.")
        return cleaned


@extend_schema_field({"type": "string", "pattern": NO_NUL})
class TextFilter(filters.CharFilter):
    """Text, which (as every form field) refuses a NUL character."""


class OrderFilter(filters.FilterSet):
    status = filters.ChoiceFilter(
        choices=[(s.label, s.label) for s in OrderStatus], method="filter_status"
    )
    payment_channel = TextFilter()
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ["status", "payment_channel", "created_after", "created_before"]
        form = FiltersNotBlank

    @extend_schema_field({"type": "string", "enum": [s.label for s in OrderStatus]})
    def filter_status(self, queryset, name, value):
        return queryset.filter(status={s.label: s.value for s in OrderStatus}[value])


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = OrderSerializer
    lookup_field = "order_bid"
    pagination_class = NewestFirst
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = OrderFilter
    throttle_classes = [ScopedRateThrottle]

    def get_queryset(self):
        return selectors.orders_visible_to(self.request.user)

    def get_serializer_class(self):
        return OrderDetailSerializer if self.action == "retrieve" else OrderSerializer

    def get_throttles(self):
        self.throttle_scope = {"create": "orders", "pay": "payments"}.get(self.action, "")
        return super().get_throttles() if self.throttle_scope else []

    def _order(self) -> Order:
        return get_object_or_404(self.get_queryset(), order_bid=self.kwargs["order_bid"])

    def _answer(self, order: Order, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=order.pk)
        # A new order's discount lines, as priced: not read back.
        lines = getattr(order, "discount_lines", None)
        context = {"discount_lines": {order.order_bid: lines}} if lines is not None else {}
        return Response(OrderSerializer(fresh, context=context).data, status=status_code)

    @extend_schema(
        request=OrderCreateSerializer,
        responses={
            201: OrderSerializer,
            200: OpenApiResponse(OrderSerializer, "reused"),
            **errors(
                400,
                payment_channel_not_enabled=NOT_ENABLED,
                coupon_expired="the coupon's window has ended",
                coupon_not_started="the coupon's window has not begun",
                coupon_not_applicable="the coupon is for other products or another "
                "currency, or does not combine with a promotion that takes off more",
            ),
            **errors(404),
            **errors(
                409,
                coupon_used="the single-use coupon is held by another order",
                coupon_limit_reached="the coupon's total or the user's own cap is taken",
            ),
        },
    )
    def create(self, request):
        data = OrderCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order, created = services.order_create(
            user_bid=selectors.user_bid_for(request.user),
            product_bid=data.validated_data["product"],
            channel=data.validated_data.get("payment_channel") or None,
            actor=request.user,
            coupon_code=data.validated_data.get("coupon_code") or "",
        )
        return self._answer(order, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        request=PaySerializer,
        responses={
            201: PayResultSerializer,
            **errors(
                400,
                payment_channel_not_enabled=NOT_ENABLED,
                payment_method_invalid=METHOD_INVALID,
                currency_not_supported="the channel does not take the order's currency",
            ),
            **errors(409, 502, 503),
        },
    )
    @action(detail=True, methods=["post"])
    def pay(self, request, order_bid=None):
        order = self._order()
        data = PaySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        started = services.payment_start(
            order=order,
            channel=values.get("payment_channel") or None,
            method=values.get("method") or None,
            client_ip=request.META.get("REMOTE_ADDR", "127.0.0.1"),
            success_url=values.get("success_url", ""),
            cancel_url=values.get("cancel_url", ""),
            open_id=values.get("open_id", ""),
            actor=request.user,
        )
        attempt = started.attempt
        payment = {
            "payment_channel": started.channel,
            "method": started.method,
            "attempt_bid": attempt.attempt_bid,
            "amount": str(to_major(attempt.amount, attempt.currency_code)),
            "currency": attempt.currency_code,
            **started.client_data,
        }
        fresh = self.get_queryset().get(pk=order.pk)
        return Response(
            {"order": OrderSerializer(fresh).data, "payment": payment},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=None,
        responses={
            200: OrderSerializer,
            **errors(400, payment_channel_not_enabled="the order's channel is unknown here"),
            **errors(409, 502, 503),
        },
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, order_bid=None):
        order = services.payment_sync(order=self._order(), source="api")
        return self._answer(order)

    @extend_schema(request=None, responses={200: OrderSerializer, **errors(409)})
    @action(detail=True, methods=["post"])
    def cancel(self, request, order_bid=None):
        order = services.order_cancel(order=self._order(), actor=request.user, source="api")
        return self._answer(order)


class RefundPermission(permissions.IsAuthenticated):
    """Everyone signed in reads their own; creating needs orders.add_refund."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        return view.action != "create" or request.user.has_perm("orders.add_refund")


class RefundViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RefundSerializer
    permission_classes = [RefundPermission]
    lookup_field = "refund_bid"
    pagination_class = NewestFirst

    def get_queryset(self):
        return selectors.refunds_visible_to(self.request.user)

    @extend_schema(
        request=RefundCreateSerializer,
        responses={
            201: RefundSerializer,
            202: OpenApiResponse(
                RefundAwaitingApprovalSerializer,
                "held for a second staff member's approval: the order's staff refunds "
                "would pass REFUND_APPROVAL_THRESHOLDS; nothing is sent to the provider",
            ),
            **errors(
                400,
                refund_exceeds_refundable="more than the order has left to refund "
                "(`details.refundable`)",
            ),
            **errors(404, 409, 502, 503),
        },
    )
    def create(self, request):
        data = RefundCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        # Staff linked to creators refund only their creators' orders: another's is
        # not found, as one that does not exist.
        orders = selectors.scoped(Order.objects.live(), request.user)
        order = get_object_or_404(orders, order_bid=values["order"])
        result = services.refund_request(
            order=order,
            amount=values.get("amount"),
            reason=values["reason"],
            actor=request.user,
            source=f"api:{request.user.get_username()}",
        )
        if isinstance(result, RefundApproval):
            body = {
                "code": "refund_awaiting_approval",
                "message": f"The refund of {result.amount} {result.currency.upper()} waits "
                "for a second staff member's approval in the support console.",
                "approval": RefundApprovalSerializer(result).data,
            }
            return Response(body, status=status.HTTP_202_ACCEPTED)
        return Response(RefundSerializer(result).data, status=status.HTTP_201_CREATED)
