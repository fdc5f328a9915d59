"""Shapes of the public API. Input serializers validate; the views call services.

Money is a decimal string in major units next to its lower-case currency.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import ValidationError as ModelValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bridge.identity import USER_BID
from orders.errors import PriceDoesNotFitCurrency
from orders.models import PRICE_DECIMAL_PLACES, Order, OrderStatus, Product, Refund, RefundApproval
from orders.selectors import order_attempts, order_price_lines, order_refundable_amount
from payments import registry
from payments_project.money import CURRENCY_EXPONENTS, display, format_money
from promos.selectors import order_discount_lines

MONEY = {"max_digits": 10, "decimal_places": 2, "coerce_to_string": True}

# Money in requests, exactly as the schema publishes it: digits, no sign, no exponent, no
# leading zeros, at most 8 before the point and 2 after ("19.90", "5", "0.50").
MONEY_PATTERN = r"^(?:0|[1-9][0-9]{0,7})(?:\.[0-9]{1,2})?$"
# The same, above zero ("0.01" and up).
POSITIVE_MONEY_PATTERN = r"^(?:[1-9][0-9]{0,7}(?:\.[0-9]{1,2})?|0\.(?:[1-9][0-9]?|0[1-9]))$"

# Currencies a price can be kept in exactly; the API takes them in either case.
PRICE_CURRENCIES = sorted(c for c, e in CURRENCY_EXPONENTS.items() if e <= PRICE_DECIMAL_PLACES)


DISPLAY_HELP = (
    "For people: the amount formatted in the request's language (Accept-Language). "
    "Never parse it; the decimal field beside it is the amount."
)


class MoneyField(serializers.DecimalField):
    """Money in major units. Read: a decimal string. Written: a string matching
    ``pattern`` (never a JSON number, never a float); the schema publishes the pattern."""

    def __init__(self, *, positive: bool = False, **kwargs) -> None:
        super().__init__(**MONEY, **kwargs)
        self.pattern = POSITIVE_MONEY_PATTERN if positive else MONEY_PATTERN

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(self.pattern, data):
            self.fail("invalid")
        return super().to_internal_value(data)

    def openapi_request_schema(self) -> dict:
        return {"type": "string", "format": "decimal", "pattern": self.pattern}


@extend_schema_field(
    {"type": "string", "readOnly": True, "example": "CN¥299.00", "description": DISPLAY_HELP}
)
class MoneyDisplayField(serializers.Field):
    """An amount as a person reads it (``format_money``), for display only: in the
    request's language (Accept-Language), with its currency's symbol and decimals."""

    def __init__(self, amount: str, currency: str = "currency", **kwargs) -> None:
        self.amount, self.currency = amount, currency
        super().__init__(source="*", read_only=True, help_text=DISPLAY_HELP, **kwargs)

    def to_representation(self, value) -> str:
        return format_money(getattr(value, self.amount), getattr(value, self.currency))


class ChannelField(serializers.CharField):
    """A payment channel (and with ``hints``, ``channel:method``). The services refuse a
    channel that is not enabled (400 ``payment_channel_not_enabled``) or a method it
    does not have (400 ``payment_method_invalid``); the schema lists what this deployment
    takes, read when the schema is generated."""

    def __init__(self, *, hints: bool = False, methods: bool = False, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)
        self.hints = hints
        self.methods = methods

    def openapi_request_schema(self) -> dict:
        choices = [""]
        for channel in registry.enabled_channels():
            try:
                provider = registry.get_provider(channel)
            except registry.ChannelNotEnabled:  # enabled, but this code base has no such channel
                continue
            if self.methods:
                choices += [m for m in provider.methods if m not in choices]
            else:
                choices.append(channel)
            if self.hints:
                choices += [f"{channel}:{method}" for method in provider.methods]
        if choices == [""]:  # no channel is enabled: nothing but blank is taken
            return {"type": "string", "maxLength": 0}
        return {"type": "string", "enum": choices}


class CurrencyField(serializers.CharField):
    """A currency a price can be kept in, lower or upper case; stored lower case."""

    def openapi_request_schema(self) -> dict:
        return {
            "type": "string",
            "enum": PRICE_CURRENCIES + [c.upper() for c in PRICE_CURRENCIES],
        }


# A serializer mixin, with no docstring: drf-spectacular would describe every serializer
# that has none of its own with it.
class JsonTypes:
    # A request field of the wrong JSON type is refused, as the schema says, where DRF
    # would coerce it (5 for a string, 0 or "yes" for a boolean).

    def to_internal_value(self, data):
        if isinstance(data, dict):
            wrong = {}
            for name, field in self.fields.items():
                value = data.get(name)
                if field.read_only or value is None:
                    continue
                if isinstance(field, serializers.CharField) and not isinstance(value, str):
                    wrong[name] = ["Not a string."]
                elif isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
                    wrong[name] = ["Not true or false."]
            if wrong:
                raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


def price_pattern(currency: str) -> str:
    """The request amounts above zero that fit ``currency`` (and the price columns)."""
    places = min(CURRENCY_EXPONENTS[currency], PRICE_DECIMAL_PLACES)
    if places == PRICE_DECIMAL_PLACES:
        return POSITIVE_MONEY_PATTERN
    return _price_fits(places)


def price_patterns() -> list[tuple[list[str], str]]:
    """For each number of places below the columns', its currencies (both cases) and
    the pattern of the amounts that fit them."""
    found = []
    for places in range(PRICE_DECIMAL_PLACES):
        codes = [c for c in PRICE_CURRENCIES if CURRENCY_EXPONENTS[c] == places]
        if codes:
            found.append((codes + [c.upper() for c in codes], _price_fits(places)))
    return found


def _price_fits(places: int) -> str:
    """The request prices that fit a currency of ``places`` decimal places."""
    digits = ["[0-9]" if i < places else "0" for i in range(PRICE_DECIMAL_PLACES)]
    fraction = digits[0] + "".join(f"(?:{d}" for d in digits[1:]) + ")?" * (len(digits) - 1)
    return rf"^(?:0|[1-9][0-9]{{0,7}})(?:\.{fraction})?$"


class ProductSerializer(JsonTypes, serializers.ModelSerializer):
    """A product: its price in major units of its currency."""

    price = MoneyField()
    currency = CurrencyField(max_length=3, required=False)
    price_display = MoneyDisplayField("price")

    class Meta:
        model = Product
        fields = [
            "product_bid",
            "name",
            "description",
            "price",
            "currency",
            "price_display",
            "active",
            "creator_bid",
        ]
        read_only_fields = ["product_bid"]
        extra_kwargs = {
            "description": {"required": False},
            "active": {"required": False},
            "creator_bid": {"required": False},
        }

    def validate(self, attrs):
        """The price must fit its currency exactly (see Product.clean): a request that
        does not fit itself is a 400; a change that does not fit the product's stored
        price or currency is a 409 ``price_does_not_fit_currency``."""
        probe = Product(
            price=attrs.get("price", getattr(self.instance, "price", None)),
            currency=attrs.get("currency", getattr(self.instance, "currency", "cny")),
        )
        try:
            probe.clean()
        except ModelValidationError as exc:
            stored = self.instance is not None and not {"price", "currency"} <= set(attrs)
            if stored and "currency" not in exc.message_dict:
                raise PriceDoesNotFitCurrency(
                    f"The price {probe.price} does not fit {probe.currency.upper()}.",
                    price=probe.price,
                    currency=probe.currency,
                ) from exc
            raise serializers.ValidationError(exc.message_dict) from exc
        if "currency" in attrs:
            attrs["currency"] = probe.currency
        return attrs

    def openapi_request_constraints(self) -> dict:
        """What ``validate`` checks across fields, for the schema: in a currency with
        fewer decimal places than prices keep (JPY), the price has no more."""
        rules = []
        for places in range(PRICE_DECIMAL_PLACES):
            codes = [c for c in PRICE_CURRENCIES if CURRENCY_EXPONENTS[c] == places]
            if codes:
                codes += [c.upper() for c in codes]
                rules.append(
                    {
                        "anyOf": [
                            {"properties": {"currency": {"not": {"enum": codes}}}},
                            {"properties": {"price": {"pattern": _price_fits(places)}}},
                        ]
                    }
                )
        return {"allOf": rules} if rules else {}


class LineSerializer(serializers.Serializer):
    """One line of an order's price: the list price, then each discount (negative)."""

    kind = serializers.ChoiceField(choices=["price", "promotion", "coupon"])
    label = serializers.CharField()
    amount = serializers.CharField(help_text="Major units; negative for a discount.")
    display = serializers.CharField(help_text=DISPLAY_HELP)


class OrderListSerializer(serializers.ListSerializer):
    """Orders, with the discount lines of those that have some read in two queries."""

    def to_representation(self, data):
        orders = list(data.all() if hasattr(data, "all") else data)
        discounted = [o.order_bid for o in orders if o.discount_price]
        self.child.context["discount_lines"] = order_discount_lines(discounted)
        return [self.child.to_representation(order) for order in orders]


class OrderSerializer(serializers.ModelSerializer):
    """An order. ``paid_at`` and what refunds hold of it come annotated by
    ``selectors.orders_visible_to``; the refundable amount is the selector's.

    ``payable_amount`` is what the buyer pays after discounts; ``list_amount`` is the
    product's price (the legacy column ``payable_price``); ``lines`` add up to it."""

    product = serializers.CharField(source="product_bid")
    status = serializers.SerializerMethodField()
    status_code = serializers.IntegerField(source="status")
    payable_amount = serializers.DecimalField(source="due_price", read_only=True, **MONEY)
    list_amount = serializers.DecimalField(source="payable_price", **MONEY)
    discount_amount = serializers.DecimalField(source="discount_price", **MONEY)
    lines = serializers.SerializerMethodField()
    paid_amount = serializers.DecimalField(source="paid_price", **MONEY)
    refunded_amount = serializers.DecimalField(source="refunded_price", **MONEY)
    refundable_amount = serializers.SerializerMethodField()
    paid_at = serializers.DateTimeField(allow_null=True, read_only=True)
    payable_display = MoneyDisplayField("due_price")
    paid_display = MoneyDisplayField("paid_price")
    refunded_display = MoneyDisplayField("refunded_price")

    class Meta:
        model = Order
        fields = [
            "order_bid",
            "user_bid",
            "product",
            "status",
            "status_code",
            "payment_channel",
            "currency",
            "payable_amount",
            "list_amount",
            "discount_amount",
            "lines",
            "paid_amount",
            "refunded_amount",
            "refundable_amount",
            "payable_display",
            "paid_display",
            "refunded_display",
            "created_at",
            "updated_at",
            "paid_at",
        ]
        read_only_fields = fields
        list_serializer_class = OrderListSerializer

    @extend_schema_field(LineSerializer(many=True))
    def get_lines(self, order: Order) -> list[dict]:
        found = self.context.get("discount_lines", {}).get(order.order_bid)
        # (A discount of nothing shows as 0.00, not -0.00.)
        return [
            {
                **line,
                "amount": display(line["amount"] or 0),
                "display": format_money(line["amount"] or 0, order.currency),
            }
            for line in order_price_lines(order, found)
        ]

    @extend_schema_field(serializers.ChoiceField(choices=[s.label for s in OrderStatus]))
    def get_status(self, order: Order) -> str:
        return OrderStatus(order.status).label

    @extend_schema_field(serializers.DecimalField(**MONEY))
    def get_refundable_amount(self, order: Order) -> str:
        return display(order_refundable_amount(order))


class AttemptSerializer(serializers.Serializer):
    """One payment attempt of an order, read only."""

    payment_channel = serializers.CharField()
    attempt_bid = serializers.CharField()
    method = serializers.CharField()
    provider_payment_id = serializers.CharField(allow_blank=True)
    amount = serializers.CharField(help_text="Major units.")
    currency = serializers.CharField()
    status = serializers.CharField()
    status_code = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    runs_here = serializers.BooleanField(
        help_text="False for the platform's own Alipay / WeChat Pay channels, which this "
        "service shows but does not run: their orders cannot be refunded here."
    )


class OrderDetailSerializer(OrderSerializer):
    """An order with its payment attempts, on every channel it tried."""

    attempts = serializers.SerializerMethodField()

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "attempts"]
        read_only_fields = fields

    @extend_schema_field(AttemptSerializer(many=True))
    def get_attempts(self, order: Order) -> list[dict]:
        return order_attempts(order)


class OrderCreateSerializer(JsonTypes, serializers.Serializer):
    """An order of a product, through a payment channel (the default one when blank)."""

    product = serializers.CharField(max_length=36)
    payment_channel = ChannelField(max_length=50)
    coupon_code = serializers.CharField(
        max_length=36,
        required=False,
        allow_blank=True,
        help_text="A coupon code: reserved for the order, used when it is paid.",
    )


class PaySerializer(JsonTypes, serializers.Serializer):
    """How to pay: the channel and method (or ``channel:method``; the order's channel and
    its default method when blank), and what the method needs."""

    payment_channel = ChannelField(max_length=50, hints=True)
    method = ChannelField(max_length=80, hints=True, methods=True)
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
    amount_display = MoneyDisplayField("amount")

    class Meta:
        model = Refund
        fields = [
            "refund_bid",
            "order",
            "amount",
            "currency",
            "amount_display",
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


class RefundCreateSerializer(JsonTypes, serializers.Serializer):
    """A refund of a paid order: an amount (all that is left when absent) and a reason."""

    order = serializers.CharField(max_length=36)
    amount = MoneyField(positive=True, required=False, min_value=Decimal("0.01"))
    reason = serializers.CharField(max_length=255)


class PlatformUserField(serializers.CharField):
    """A platform ``user_bid``."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=36, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not USER_BID.fullmatch(value):
            raise serializers.ValidationError("Letters, digits, '-' or '_', up to 36.")
        return value

    def openapi_request_schema(self) -> dict:
        return {"type": "string", "pattern": f"^{USER_BID.pattern}$"}


class EntitlementChangeSerializer(JsonTypes, serializers.Serializer):
    """A grant or revoke of a product for a platform user, and why."""

    user_bid = PlatformUserField()
    product_bid = serializers.CharField(max_length=36)
    reason = serializers.CharField(max_length=255)


class EntitlementSerializer(serializers.Serializer):
    """Whether a platform user owns a product: while a live order of it is paid (a
    partial refund keeps it; a full refund or a revoke ends it)."""

    user_bid = serializers.CharField()
    product_bid = serializers.CharField()
    owned = serializers.BooleanField()
    order_bid = serializers.CharField(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)


class EntitlementBatchSerializer(serializers.Serializer):
    results = EntitlementSerializer(many=True)


class ProductUpsertSerializer(ProductSerializer):
    """A product as the platform keeps its course: every field given."""

    currency = CurrencyField(max_length=3)

    class Meta(ProductSerializer.Meta):
        extra_kwargs = {
            "description": {"required": False},
            "active": {"required": True},
            "creator_bid": {"required": False},
        }
