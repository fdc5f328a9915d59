"""Coupons in the API.

- ``POST /api/coupon-batches/`` (staff with ``promos.add_couponbatch``) makes a batch and
  answers it with its ``codes``; ``GET /api/coupon-batches/{coupon_bid}/`` reads it back
  with its figures.
- ``POST /api/coupons/redeem/`` ``{"code"}``: a signed-in user redeems an activation
  code (a coupon for one product that leaves nothing to pay) and owns the product.

Orders take a coupon through ``POST /api/orders/`` with ``coupon_code``.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import selectors, services
from orders.errors import ProductNotFound
from orders.models import Order, Product
from orders.serializers import (
    MONEY,
    PRICE_CURRENCIES,
    CurrencyField,
    JsonTypes,
    MoneyField,
    OrderSerializer,
    price_pattern,
    price_patterns,
)
from payments_project.openapi import errors
from promos import selectors as promo_selectors
from promos.batches import MAX_CODES, BatchSpec, batch_codes, batch_create
from promos.errors import (
    CouponError,
    CouponExpired,
    CouponNotApplicable,
    CouponNotFound,
    CouponNotStarted,
)
from promos.models import CouponBatch, DiscountType, UsageType

DISCOUNT_TYPES = {"fixed": DiscountType.FIXED, "percent": DiscountType.PERCENT}
USAGES = {"shared": UsageType.SHARED, "single": UsageType.SINGLE}


class StrictText(serializers.CharField):
    """Text that must be a JSON string (DRF would take 5 for "5")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictInteger(serializers.IntegerField):
    """A whole number that must be a JSON integer (DRF would take "5" or 5.0)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


# Above 0, at most 100, two places at most: a percentage off.
PERCENT_PATTERN = r"^(?:100(?:\.00?)?|[1-9][0-9]?(?:\.[0-9]{1,2})?|0\.(?:[1-9][0-9]?|0[1-9]))$"
SHARED_CODE = r"^[A-Za-z0-9_-]{4,36}$"


class CouponBatchCreateSerializer(JsonTypes, serializers.Serializer):
    """A coupon batch: ``shared`` (one ``code``, up to ``total_limit`` uses) or
    ``single`` (``count`` generated codes, one use each). A ``fixed`` discount is in
    ``currency``, the currency of the listed products; a ``percent`` one is 0.01-100.
    ``products`` empty: every product. ``ends_at`` must come after ``starts_at`` (409
    ``coupon_window_empty``)."""

    name = serializers.CharField(max_length=255)
    discount_type = serializers.ChoiceField(choices=list(DISCOUNT_TYPES))
    value = MoneyField(positive=True)
    currency = CurrencyField(max_length=3, required=False)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    products = serializers.ListField(
        child=StrictText(max_length=36), allow_empty=True, max_length=1000
    )
    usage = serializers.ChoiceField(choices=list(USAGES))
    code = serializers.CharField(required=False, allow_blank=True, max_length=36)
    count = StrictInteger(required=False, min_value=1, max_value=MAX_CODES)
    total_limit = StrictInteger(required=False, min_value=1, max_value=10**12)
    per_user_limit = StrictInteger(required=False, min_value=1, max_value=10**6, default=1)
    stacks_with_promotions = serializers.BooleanField(required=False, default=False)
    release_on_refund = serializers.BooleanField(required=False, default=True)

    def validate(self, data):
        problems = {}
        if data["discount_type"] == "percent":
            if not re.fullmatch(PERCENT_PATTERN, str(self.initial_data.get("value"))):
                problems["value"] = "A percentage above 0, at most 100."
            data["currency"] = ""
        elif not data.get("currency"):
            problems["currency"] = "The currency of a fixed discount."
        elif data["currency"].lower() not in PRICE_CURRENCIES:
            problems["currency"] = "A currency prices are kept in."
        else:
            data["currency"] = data["currency"].lower()
            if not re.fullmatch(
                price_pattern(data["currency"]), str(self.initial_data.get("value"))
            ):
                problems["value"] = f"An amount of {data['currency'].upper()}."
        code = data.get("code") or ""
        if data["usage"] == "single":
            if not data.get("count"):
                problems["count"] = "How many single-use codes to make."
            if code:
                problems["code"] = "Single-use codes are generated; give a count instead."
        else:
            if not re.fullmatch(SHARED_CODE, code):
                problems["code"] = "The code buyers enter: 4-36 letters, digits, - or _."
            if not data.get("total_limit"):
                problems["total_limit"] = "How many times the code may be used in all."
        if problems:
            raise serializers.ValidationError(problems)
        return data

    def openapi_request_constraints(self) -> dict:
        """What ``validate`` checks across fields, for the schema."""
        fixed_value = [
            {
                "anyOf": [
                    {"properties": {"currency": {"not": {"enum": codes}}}},
                    {"properties": {"value": {"pattern": pattern}}},
                ]
            }
            for codes, pattern in price_patterns()
        ]
        return {
            "allOf": [
                {
                    "anyOf": [
                        {
                            "properties": {
                                "discount_type": {"pattern": "^percent$"},
                                "value": {"pattern": PERCENT_PATTERN},
                            }
                        },
                        {
                            "properties": {"discount_type": {"pattern": "^fixed$"}},
                            "required": ["currency"],
                            "allOf": fixed_value,
                        },
                    ]
                },
                {
                    "anyOf": [
                        {
                            "properties": {
                                "usage": {"pattern": "^shared$"},
                                "code": {"pattern": SHARED_CODE},
                            },
                            "required": ["code", "total_limit"],
                        },
                        {
                            "properties": {
                                "usage": {"pattern": "^single$"},
                                "code": {"maxLength": 0},
                            },
                            "required": ["count"],
                        },
                    ]
                },
            ]
        }


class CouponWindowEmpty(CouponError):
    code = "coupon_window_empty"
    http_status = 409


class CouponCurrencyMismatch(CouponError):
    code = "currency_mismatch"
    http_status = 409


def batch_spec(values: dict) -> BatchSpec:
    """The batch asked for, checked against the products it names."""
    if values["ends_at"] <= values["starts_at"]:
        raise CouponWindowEmpty("ends_at must come after starts_at.")
    products = list(dict.fromkeys(values["products"]))
    found = dict(
        Product.objects.filter(product_bid__in=products).values_list("product_bid", "currency")
    )
    unknown = [bid for bid in products if bid not in found]
    if unknown:
        raise ProductNotFound(f"No product {unknown[0]!r}.", product=unknown[0])
    other = [bid for bid, cur in found.items() if values["currency"] and cur != values["currency"]]
    if other:
        raise CouponCurrencyMismatch(
            f"Product {other[0]!r} is not priced in {values['currency'].upper()}: a fixed "
            "discount would never apply to it.",
            product=other[0],
        )
    return BatchSpec(
        name=values["name"],
        discount_type=DISCOUNT_TYPES[values["discount_type"]],
        value=values["value"],
        currency=values["currency"],
        starts_at=values["starts_at"],
        ends_at=values["ends_at"],
        products=products,
        usage=USAGES[values["usage"]],
        code=values.get("code") or "",
        count=values.get("count") or 0,
        total_limit=values.get("total_limit") or 0,
        per_user_limit=values["per_user_limit"],
        stacks_with_promotions=values["stacks_with_promotions"],
        release_on_refund=values["release_on_refund"],
    )


class CouponBatchSerializer(serializers.ModelSerializer):
    discount_type = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()
    value = serializers.DecimalField(**MONEY)
    starts_at = serializers.DateTimeField(source="start")
    ends_at = serializers.DateTimeField(source="end")
    products = serializers.ListField(child=serializers.CharField())
    total_limit = serializers.IntegerField(source="total_count")
    figures = serializers.SerializerMethodField()
    codes = serializers.SerializerMethodField()

    class Meta:
        model = CouponBatch
        fields = [
            "coupon_bid",
            "name",
            "discount_type",
            "value",
            "currency",
            "starts_at",
            "ends_at",
            "products",
            "usage",
            "total_limit",
            "per_user_limit",
            "stacks_with_promotions",
            "release_on_refund",
            "figures",
            "codes",
        ]
        read_only_fields = fields

    def get_discount_type(self, batch) -> str:
        return DiscountType(batch.discount_type).label

    def get_usage(self, batch) -> str:
        return UsageType(batch.usage_type).label

    def get_figures(self, batch) -> dict[str, int]:
        return promo_selectors.batch_figures([batch.coupon_bid])[batch.coupon_bid]

    def get_codes(self, batch) -> list[str]:
        codes = self.context.get("codes")
        return codes if codes is not None else batch_codes(batch)


class BatchPermission(permissions.DjangoModelPermissions):
    """Staff only: reading a batch (its codes) needs the view permission too."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


@extend_schema_view(
    retrieve=extend_schema(
        responses={200: CouponBatchSerializer, **errors(401, 403, 404)},
        description="A batch with its figures and codes: staff with `view_couponbatch`.",
    )
)
class CouponBatchViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = CouponBatchSerializer
    permission_classes = [BatchPermission]
    queryset = CouponBatch.objects.order_by("-id")
    lookup_field = "coupon_bid"
    lookup_value_regex = r"[^/.]{1,36}"

    @extend_schema(
        request=CouponBatchCreateSerializer,
        responses={
            201: CouponBatchSerializer,
            **errors(400, 401, 403, 404),
            **errors(
                409,
                coupon_code_taken="another coupon has this code",
                coupon_window_empty="`ends_at` is not after `starts_at`",
                currency_mismatch="a listed product is not priced in the fixed discount's currency",
            ),
        },
    )
    def create(self, request):
        data = CouponBatchCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        spec = batch_spec(data.validated_data)
        batch, codes = batch_create(spec=spec, actor=request.user)
        body = CouponBatchSerializer(batch, context={"codes": codes}).data
        return Response(body, status=status.HTTP_201_CREATED)


class RedeemSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=36)


class RedeemView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="coupons_redeem",
        request=RedeemSerializer,
        responses={
            201: OrderSerializer,
            **errors(401, 404),
            **errors(
                409,
                coupon_expired="the code's window has ended",
                coupon_not_started="the code's window has not begun",
                coupon_not_applicable="not an activation code: it is not for one product, "
                "or it leaves something to pay",
                coupon_used="the single-use code is taken",
                coupon_limit_reached="the code's total or the user's cap is taken",
                already_purchased="the user owns the product already",
            ),
        },
        description="Redeem an activation code: the user owns its product at once, "
        "through a paid order of channel `free`. A code that exists but cannot be redeemed "
        "now (its window, or it is no activation code) answers 409: the request is well "
        "formed, the code's state refuses it.",
    )
    def post(self, request):
        try:
            return self._redeem(request)
        except (CouponExpired, CouponNotStarted, CouponNotApplicable) as exc:
            exc.http_status = status.HTTP_409_CONFLICT
            raise

    def _redeem(self, request):
        data = RedeemSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        code = data.validated_data["code"].strip()
        batch, _ = promo_selectors.coupon_lookup(code)
        if batch is None or not batch.enabled:
            raise CouponNotFound(f"No coupon {code!r}.", coupon=code)
        products = batch.products
        if len(products) != 1:
            raise CouponNotApplicable(
                f"Coupon {code!r} is not an activation code: it is not for one product.",
                coupon=code,
                reason="not_activation",
            )
        order, _ = services.order_create(
            user_bid=selectors.user_bid_for(request.user),
            product_bid=products[0],
            actor=request.user,
            coupon_code=code,
            source="api:redeem",
            free_only=True,
        )
        fresh = selectors.orders_for_api(Order.objects.filter(pk=order.pk)).get()
        return Response(OrderSerializer(fresh).data, status=status.HTTP_201_CREATED)
