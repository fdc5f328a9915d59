"""The partner API: the platform's backend, with a key (``X-Api-Key``) and its scope.

- ``GET /api/entitlements/?user_bid=U&product_bid=P`` (``product_bid`` may repeat);
- ``POST /api/entitlements/grant/`` and ``/revoke/``;
- ``PUT /api/products/{product_bid}/`` (``orders.api.ProductViewSet``).

No key answers 401, a key without the scope 403 ``permission_denied``.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from bridge.identity import USER_BID
from bridge.models import Scope
from bridge.partners import ApiKeyAuthentication, PartnerScope
from orders import selectors, services
from orders.models import Order
from orders.serializers import (
    EntitlementBatchSerializer,
    EntitlementChangeSerializer,
    EntitlementSerializer,
    OrderSerializer,
)
from payments_project.openapi import errors

MAX_PRODUCTS = 100
KEY_ERRORS = {
    **errors(401, authentication_failed="unknown or revoked key", not_authenticated="no key"),
    **errors(403, permission_denied="the key lacks the `entitlements` scope"),
}


class PartnerView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [PartnerScope]
    partner_scope = Scope.ENTITLEMENTS

    def source(self) -> str:
        return self.request.user.get_username()

    @staticmethod
    def order_answer(order: Order, code: int) -> Response:
        fresh = selectors.orders_for_api(Order.objects.filter(pk=order.pk)).get()
        return Response(OrderSerializer(fresh).data, status=code)


class EntitlementView(PartnerView):
    @extend_schema(
        operation_id="entitlements_retrieve",
        parameters=[
            OpenApiParameter(
                "user_bid",
                {"type": "string", "pattern": f"^{USER_BID.pattern}$"},
                required=True,
                description="The platform's user_bid.",
            ),
            OpenApiParameter(
                "product_bid",
                {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1, "maxLength": 36},
                    "minItems": 1,
                    "maxItems": MAX_PRODUCTS,
                },
                required=True,
                explode=True,
                description='Repeat it (up to 100) for a batch answer, `{"results": [...]}`.',
            ),
        ],
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="EntitlementAnswer",
                    serializers=[EntitlementSerializer, EntitlementBatchSerializer],
                    resource_type_field_name=None,
                ),
                'one product_bid: its entitlement; several: `{"results": [...]}`',
            ),
            **errors(400),
            **KEY_ERRORS,
        },
    )
    def get(self, request):
        user_bid = request.query_params.get("user_bid", "")
        product_bids = list(dict.fromkeys(request.query_params.getlist("product_bid")))
        problems = {}
        if not USER_BID.fullmatch(user_bid):
            problems["user_bid"] = ["A user_bid: letters, digits, '-' or '_', up to 36."]
        if not product_bids or len(product_bids) > MAX_PRODUCTS:
            problems["product_bid"] = [f"One to {MAX_PRODUCTS} product_bid."]
        elif any(not bid or len(bid) > 36 for bid in product_bids):
            problems["product_bid"] = ["Each product_bid: 1 to 36 characters."]
        if problems:
            raise ValidationError(problems)
        answers = selectors.entitlements(user_bid=user_bid, product_bids=product_bids)
        if len(request.query_params.getlist("product_bid")) == 1:
            return Response(EntitlementSerializer(answers[0]).data)
        return Response(EntitlementBatchSerializer({"results": answers}).data)


class EntitlementGrantView(PartnerView):
    @extend_schema(
        operation_id="entitlements_grant",
        request=EntitlementChangeSerializer,
        responses={
            201: OpenApiResponse(OrderSerializer, "granted: a paid order of channel `grant`"),
            200: OpenApiResponse(OrderSerializer, "already owned: the order that owns it"),
            **errors(400, 404),
            **KEY_ERRORS,
        },
    )
    def post(self, request):
        data = EntitlementChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order, created = services.entitlement_grant(**data.validated_data, source=self.source())
        return self.order_answer(order, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class EntitlementRevokeView(PartnerView):
    @extend_schema(
        operation_id="entitlements_revoke",
        description="End the user's entitlement without moving money; 404 "
        "`entitlement_not_found` when the user does not own the product.",
        request=EntitlementChangeSerializer,
        responses={
            200: OpenApiResponse(OrderSerializer, "revoked (status 507): no money moved"),
            **errors(400, 404),
            **KEY_ERRORS,
        },
    )
    def post(self, request):
        data = EntitlementChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = services.entitlement_revoke(**data.validated_data, source=self.source())
        return self.order_answer(order, status.HTTP_200_OK)
