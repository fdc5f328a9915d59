"""The API's OpenAPI schema: the error body and the errors each operation can answer.

Every error answers with ``payments_project.errors.error_body``; ``ErrorSerializer``
describes it once, as the ``Error`` component. ``AutoSchema`` adds the errors any
operation can meet by its shape (authentication, permissions, bodies, lookups, cursors,
throttles); an operation names the errors of its own services with ``errors()`` in its
``@extend_schema(responses=...)``.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.plumbing import analyze_named_regex_pattern
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.pagination import CursorPagination

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


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Error responses for ``@extend_schema(responses={...})``, all with the error body."""
    return {code: OpenApiResponse(ErrorSerializer, ERROR_DESCRIPTIONS[code]) for code in codes}


class AutoSchema(BaseAutoSchema):
    """drf-spectacular's AutoSchema, plus the errors an operation meets by its shape."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in errors(*self._shape_errors()).items():
            responses.setdefault(
                str(code), self._get_response_for_code(response, str(code), direction=direction)
            )
        return dict(sorted(responses.items()))

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
        if unsafe or (getattr(view, "filterset_class", None) and self._is_list_view()):
            codes.append(400)  # field errors, invalid filters, refusals of the services
        if view.get_authenticators():
            codes.append(401)  # no credentials, or a token that is not valid
        if unsafe:
            codes.append(403)  # a missing permission, or CSRF with a session
        paginated = self._is_list_view() and isinstance(view.paginator, CursorPagination)
        if self.path_regex.count("(?P<") or paginated:
            codes.append(404)  # no such object, or a cursor that is not valid
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer():
            codes += [413, 415]  # the JSON parser's limits
        if view.get_throttles():
            codes.append(429)
        return codes
