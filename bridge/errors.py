"""The platform bridge's errors, each with its stable code."""

from rest_framework.exceptions import AuthenticationFailed

from payments_project.errors import ServiceError


class TokenExpired(AuthenticationFailed):
    """The platform's token has expired: the user signs in again on the platform."""

    default_detail = "The token has expired; sign in again."
    default_code = "token_expired"


class TokenStoreUnavailable(ServiceError):
    code = "token_store_unavailable"
    http_status = 503
