"""Shapes of the public API. Input serializers validate; the views call services.

Money is a decimal string in major units next to its lower-case currency.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import Order, OrderStatus, Product, Refund, RefundApproval

MONEY = {"max_digits": 10, "decimal_places": 2, "coerce_to_string": True}


class ProductSerializer(serializers.ModelSerializer):
    price = serializers.DecimalField(**MONEY)

    class Meta:
        model = Product
        fields = ["product_bid", "name", "description", "price", "currency", "active"]
        read_only_fields = ["product_bid"]
        extra_kwargs = {"description": {"required": False}, "active": {"required": False}}

    def validate(self, attrs):
        """The price must fit its currency exactly (see Product.clean)."""
        from django.core.exceptions import ValidationError as ModelValidationError

        probe = Product(
            price=attrs.get("price", getattr(self.instance, "price", None)),
            currency=attrs.get("currency", getattr(self.instance, "currency", "cny")),
        )
        try:
            probe.clean()
        except ModelValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        if "currency" in attrs:
            attrs["currency"] = probe.currency
        return attrs


class OrderSerializer(serializers.ModelSerializer):
    """An order. ``paid_at`` and the pending refunds come annotated by the selector."""

    product = serializers.CharField(source="product_bid")
    status = serializers.SerializerMethodField()
    status_code = serializers.IntegerField(source="status")
    payable_amount = serializers.DecimalField(source="payable_price", **MONEY)
    paid_amount = serializers.DecimalField(source="paid_price", **MONEY)
    refunded_amount = serializers.DecimalField(source="refunded_price", **MONEY)
    refundable_amount = serializers.SerializerMethodField()
    paid_at = serializers.DateTimeField(allow_null=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "order_bid",
            "product",
            "status",
            "status_code",
            "payment_channel",
            "currency",
            "payable_amount",
            "paid_amount",
            "refunded_amount",
            "refundable_amount",
            "created_at",
            "updated_at",
            "paid_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=[s.label for s in OrderStatus]))
    def get_status(self, order: Order) -> str:
        return OrderStatus(order.status).label

    @extend_schema_field(serializers.DecimalField(**MONEY))
    def get_refundable_amount(self, order: Order) -> str:
        pending = getattr(order, "pending_refunds", None) or Decimal("0")
        refundable = order.paid_price - order.refunded_price - pending
        if order.status != OrderStatus.PAID:
            refundable = Decimal("0")
        return str(max(refundable, Decimal("0")).quantize(Decimal("0.01")))


class OrderCreateSerializer(serializers.Serializer):
    product = serializers.CharField(max_length=36)
    payment_channel = serializers.CharField(max_length=50, required=False, allow_blank=True)


class PaySerializer(serializers.Serializer):
    payment_channel = serializers.CharField(max_length=50, required=False, allow_blank=True)
    method = serializers.CharField(max_length=80, required=False, allow_blank=True)
    success_url = serializers.URLField(max_length=2000, required=False, allow_blank=True)
    cancel_url = serializers.URLField(max_length=2000, required=False, allow_blank=True)
    open_id = serializers.CharField(max_length=128, required=False, allow_blank=True)


class PaymentSerializer(serializers.Serializer):
    """What the client needs to pay: the fields of its channel and method are set."""

    payment_channel = serializers.CharField()
    method = serializers.CharField()
    attempt_bid = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=3, coerce_to_string=True)
    currency = serializers.CharField()
    client_secret = serializers.CharField(required=False)
    publishable_key = serializers.CharField(required=False)
    payment_intent_id = serializers.CharField(required=False)
    checkout_url = serializers.CharField(required=False)
    checkout_session_id = serializers.CharField(required=False)
    credential = serializers.DictField(required=False)
    qr_url = serializers.CharField(required=False, allow_blank=True)
    confirm_url = serializers.CharField(required=False)


class PayResultSerializer(serializers.Serializer):
    order = OrderSerializer()
    payment = PaymentSerializer()


class RefundSerializer(serializers.ModelSerializer):
    order = serializers.CharField(source="order.order_bid")
    amount = serializers.DecimalField(**MONEY)

    class Meta:
        model = Refund
        fields = [
            "refund_bid",
            "order",
            "amount",
            "currency",
            "status",
            "payment_channel",
            "reason",
            "duplicate_payment",
            "failure_code",
            "failure_message",
            "created_at",
            "settled_at",
        ]
        read_only_fields = fields


class RefundApprovalSerializer(serializers.ModelSerializer):
    """A staff refund held until a second staff member approves it."""

    order = serializers.CharField(source="order.order_bid")
    amount = serializers.DecimalField(**MONEY)
    requested_by = serializers.CharField(source="requested_by.get_username")

    class Meta:
        model = RefundApproval
        fields = [
            "id",
            "order",
            "amount",
            "currency",
            "status",
            "reason",
            "requested_by",
            "created_at",
        ]
        read_only_fields = fields


class RefundAwaitingApprovalSerializer(serializers.Serializer):
    """The answer to a refund request that waits for approval (202)."""

    code = serializers.CharField()
    message = serializers.CharField()
    approval = RefundApprovalSerializer()


class RefundCreateSerializer(serializers.Serializer):
    order = serializers.CharField(max_length=36)
    amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, required=False, min_value=Decimal("0.01")
    )
    reason = serializers.CharField(max_length=255)
