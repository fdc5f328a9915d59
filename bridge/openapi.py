"""How the OpenAPI schema describes the platform bridge's two credentials."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PlatformTokenScheme(OpenApiAuthenticationExtension):
    target_class = "bridge.identity.PlatformTokenAuthentication"
    name = "platformToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The platform's user token (HS256, claim `user_id`), as "
            "`Authorization: Bearer`, the `Token` header or the `token` cookie.",
        }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "bridge.partners.ApiKeyAuthentication"
    name = "partnerApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "A partner key of the platform's backend (manage.py "
            "api_key_create), with the scope the operation needs.",
        }
