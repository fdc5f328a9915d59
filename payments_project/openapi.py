"""The API's OpenAPI schema: the error body and the errors each operation can answer.

Every error answers with ``payments_project.errors.error_body``; ``ErrorSerializer``
describes it once, as the ``Error`` component. ``AutoSchema`` adds the errors any
operation can meet by its shape (authentication, permissions, bodies, lookups, cursors,
throttles); an operation names the errors of its own services with ``errors()`` in its
``@extend_schema(responses=...)``.

The request schemas say exactly what the API accepts, so that a request valid under the
schema is never refused as invalid (schemathesis checks both ways, tests/orders/
test_openapi.py): a string field refuses NUL characters and, unless it may be blank,
whitespace alone; a field or serializer can describe more (``openapi_request_schema()``,
``openapi_request_constraints()``). ``add_links`` adds the OpenAPI links between
operations (a new order to its pay, sync and cancel), which drf-spectacular does not.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.plumbing import analyze_named_regex_pattern
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.pagination import CursorPagination

# What DRF's CharField refuses, as JSON Schema patterns: NUL anywhere, and (trimmed and not
# allowed blank) whitespace alone. Whitespace is Python's str.isspace(), which is \s plus
# the separators U+001C..U+001F.
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK = r"^[^\u0000]*[^\u0000\s\u001c-\u001f][^\u0000]*$"

ERROR_DESCRIPTIONS = {
    400: "The request is not valid: `errors` holds the field errors.",
    401: "No credentials, or credentials that are not valid.",
    403: "Not allowed (a missing permission or CSRF token).",
    404: "No such resource, or one that is not yours.",
    405: "The method is not allowed here.",
    409: "The resource is not in a state that allows this.",
    413: "The request body is too large.",
    415: "The request body is not JSON.",
    429: "Too many requests: see the Retry-After header.",
    502: "The payment channel refused or failed the request: `payment_channel` names it.",
    503: "The payment channel is unavailable: `payment_channel` names it.",
}


class ErrorSerializer(serializers.Serializer):
    """The body of every error: branch on ``code``, show ``message``."""

    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    errors = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Field errors of a validation failure, by field; empty otherwise.",
    )
    payment_channel = serializers.CharField(
        required=False, help_text="The payment channel involved, when there was one."
    )
    details = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text="What the error is about (e.g. the refundable amount), by name.",
    )

    class Meta:
        ref_name = "Error"


def errors(*codes: int, **refusals: str) -> dict[int, OpenApiResponse]:
    """Error responses for ``@extend_schema(responses={...})``, all with the error body.

    ``refusals`` name, by ``code``, what else an operation's 400 or 409 means beyond its
    general description: ``errors(409, order_not_payable="...")``.
    """
    answers = {}
    for status in codes:
        description = ERROR_DESCRIPTIONS[status]
        if status in (400, 409) and refusals:
            description += " Also:" + "".join(
                f"\n- `{code}`: {text}" for code, text in refusals.items()
            )
        answers[status] = OpenApiResponse(ErrorSerializer, description)
    return answers


class AutoSchema(BaseAutoSchema):
    """drf-spectacular's AutoSchema, plus the errors an operation meets by its shape."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in errors(*self._shape_errors()).items():
            responses.setdefault(
                str(code), self._get_response_for_code(response, str(code), direction=direction)
            )
        return dict(sorted(responses.items()))

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request" or not isinstance(schema, dict):
            return schema
        describe = getattr(field, "openapi_request_schema", None)
        if describe is not None:
            schema.update(describe())
        elif (
            isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"pattern", "enum", "format"} & set(schema)
        ):
            blank_refused = not field.allow_blank and field.trim_whitespace
            schema["pattern"] = NOT_BLANK if blank_refused else NO_NUL
        return schema

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        constraints = getattr(serializer, "openapi_request_constraints", None)
        if direction == "request" and constraints is not None:
            schema.update(constraints())
        return schema

    def _resolve_path_parameters(self, variables):
        parameters = super()._resolve_path_parameters(variables)
        patterns = analyze_named_regex_pattern(self.path_regex)
        for parameter in parameters:
            if patterns.get(parameter["name"]) == "[^/.]+":
                # The router's default: a lookup with "/" or "." is no route at all.
                parameter["schema"].setdefault("pattern", "^[^/.]+$")
        return parameters

    def get_auth(self):
        auths = super().get_auth()
        anonymous_read = any(
            getattr(permission, "authenticated_users_only", True) is False
            for permission in self.view.get_permissions()
        )
        if anonymous_read and self.method in ("GET", "HEAD") and {} not in auths:
            auths.append({})  # DjangoModelPermissionsOrAnonReadOnly: anyone may read
        return auths

    def _shape_errors(self) -> list[int]:
        view = self.view
        unsafe = self.method in ("POST", "PUT", "PATCH", "DELETE")
        codes = []
        paginated = self._is_list_view() and isinstance(view.paginator, CursorPagination)
        page_size = paginated and view.paginator.page_size_query_param
        if unsafe or page_size or (getattr(view, "filterset_class", None) and self._is_list_view()):
            codes.append(400)  # field errors, invalid filters or page sizes, refusals
        if view.get_authenticators():
            codes.append(401)  # no credentials, or a token that is not valid
        if unsafe:
            codes.append(403)  # a missing permission, or CSRF with a session
        if self.path_regex.count("(?P<") or paginated:
            codes.append(404)  # no such object, or a cursor that is not valid
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer():
            codes += [413, 415]  # the JSON parser's limits
        if view.get_throttles():
            codes.append(429)
        return codes


# ---- links ----

# (operation, status) -> {link name: (target operation, parameters, request body)}, with
# runtime expressions on the answer. The operations are named by their operationId.
LINKS = {
    ("orders_create", "201"): "new order",
    ("orders_create", "200"): "new order",
    ("orders_pay_create", "201"): "payment",
    ("orders_sync_create", "200"): "order",
    ("orders_cancel_create", "200"): "order",
    ("refunds_create", "201"): "refund",
    ("products_create", "201"): "product",
    ("products_partial_update", "200"): "product",
}
ORDER = {
    "GetOrder": ("orders_retrieve", {"order_bid": "$response.body#/order_bid"}, None),
    "PayOrder": ("orders_pay_create", {"order_bid": "$response.body#/order_bid"}, None),
    "SyncOrder": ("orders_sync_create", {"order_bid": "$response.body#/order_bid"}, None),
    "CancelOrder": ("orders_cancel_create", {"order_bid": "$response.body#/order_bid"}, None),
}
FOLLOW = {
    "order": ORDER,
    # Refunding a new (unpaid) order is refused with a 409.
    "new order": {
        **ORDER,
        "RefundOrder": ("refunds_create", {}, {"order": "$response.body#/order_bid"}),
    },
    "payment": {
        "GetOrder": ("orders_retrieve", {"order_bid": "$response.body#/order/order_bid"}, None),
        "SyncOrder": ("orders_sync_create", {"order_bid": "$response.body#/order/order_bid"}, None),
        "CancelOrder": (
            "orders_cancel_create",
            {"order_bid": "$response.body#/order/order_bid"},
            None,
        ),
    },
    "refund": {
        "GetRefund": ("refunds_retrieve", {"refund_bid": "$response.body#/refund_bid"}, None),
    },
    "product": {
        "GetProduct": ("products_retrieve", {"product_bid": "$response.body#/product_bid"}, None),
        "UpdateProduct": (
            "products_partial_update",
            {"product_bid": "$response.body#/product_bid"},
            None,
        ),
        "OrderProduct": ("orders_create", {}, {"product": "$response.body#/product_bid"}),
    },
}


def add_links(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: the OpenAPI links of LINKS, from an answer to
    the operations it names a resource of (clients and schemathesis follow them)."""
    operations = {
        operation.get("operationId"): operation
        for item in result.get("paths", {}).values()
        for operation in item.values()
        if isinstance(operation, dict)
    }
    for (operation_id, status), kind in LINKS.items():
        response = operations.get(operation_id, {}).get("responses", {}).get(status)
        if response is None:
            continue
        links = response.setdefault("links", {})
        for name, (target, parameters, body) in FOLLOW[kind].items():
            if target not in operations:
                continue
            link = {"operationId": target}
            if parameters:
                link["parameters"] = parameters
            if body:
                link["requestBody"] = body
            links[name] = link
    return result
