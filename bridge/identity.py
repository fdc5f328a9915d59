"""The platform's users, signed in as they are.

The platform signs HS256 JWTs with its own secret (PLATFORM_JWT_SECRET), the claim
``user_id`` holding the user's ``user_bid``, and sends them as the ``Token`` header,
``Authorization: Bearer`` or the ``token`` cookie. With PLATFORM_TOKEN_STORE_URL set, a
token must also be in the platform's Redis token store (``<prefix><token>`` ->
``user_bid``), so that a token logged out on the platform stops working here at once.

Each platform user gets a local shadow account on first sight (``PlatformUser``), so
permissions, history and the admin work; their orders are keyed by their ``user_bid``.
"""

from __future__ import annotations

import contextlib
import re
from functools import cache
from typing import Any

import jwt
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    TokenAuthentication,
)
from rest_framework.exceptions import AuthenticationFailed

from bridge.errors import TokenExpired, TokenStoreUnavailable
from bridge.models import PlatformUser

# A user_bid as the platform makes them (32 hex characters), or any id that fits the
# orders' column: letters, digits, '-' and '_', up to 36.
USER_BID = re.compile(r"[A-Za-z0-9_-]{1,36}")
# The attribute a user object carries its user_bid in, once known.
USER_BID_ATTRIBUTE = "platform_user_bid"
# The username of a platform user's shadow account: this, then their user_bid.
SHADOW_PREFIX = "platform-"


def user_bid_for(user: Any) -> str:
    """The ``user_bid`` orders are keyed by: the platform's for a platform user, the
    primary key as text for a local account (staff, trying the service out)."""
    known = getattr(user, USER_BID_ATTRIBUTE, None)
    if known is None:
        known = str(user.pk)
        # Only a shadow account can have an identity: a local user costs no query.
        if user.get_username().startswith(SHADOW_PREFIX):
            # (a local account merely named like one has none)
            with contextlib.suppress(PlatformUser.DoesNotExist):
                known = user.platform_identity.user_bid
        setattr(user, USER_BID_ATTRIBUTE, known)
    return known


def accounts_by_user_bid(user_bids) -> dict[str, Any]:
    """The accounts whose orders are keyed by ``user_bids`` (what ``user_bid_for``
    gives), in two queries whatever their number: platform users through their
    identity, local accounts by primary key. A user_bid without an account is left out."""
    bids = {bid for bid in user_bids if bid}
    found: dict[str, Any] = {
        identity.user_bid: identity.user
        for identity in PlatformUser.objects.filter(user_bid__in=bids).select_related("user")
    }
    local = [int(bid) for bid in bids - found.keys() if bid.isdigit() and len(bid) <= 18]
    for user in get_user_model().objects.filter(pk__in=local):
        if not user.get_username().startswith(SHADOW_PREFIX):
            found[str(user.pk)] = user
    return found


def token_from(request) -> tuple[str, str] | None:
    """The platform token a request carries and where: ``Token`` header, then
    ``Authorization: Bearer``, then the ``token`` cookie."""
    header = request.META.get("HTTP_TOKEN", "").strip()
    if header:
        return header, "header"
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), "header"
    cookie = request.COOKIES.get("token", "").strip()
    if cookie:
        return cookie, "cookie"
    return None


def user_bid_from_token(token: str) -> str:
    """The ``user_bid`` a platform token stands for, or AuthenticationFailed
    (``TokenExpired`` when it has expired)."""
    try:
        claims = jwt.decode(token, settings.PLATFORM_JWT_SECRET, algorithms=["HS256"])
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except jwt.InvalidTokenError:
        raise AuthenticationFailed("The token is not valid.") from None
    user_bid = claims.get("user_id")
    if not isinstance(user_bid, str) or not USER_BID.fullmatch(user_bid):
        raise AuthenticationFailed("The token names no user.")
    if settings.PLATFORM_TOKEN_STORE_URL:
        try:
            stored = _token_store().get(settings.PLATFORM_TOKEN_KEY_PREFIX + token)
        except redis.RedisError as exc:
            raise TokenStoreUnavailable(
                "The platform's token store cannot be reached; try again shortly."
            ) from exc
        if stored is None:
            raise AuthenticationFailed("The token is logged out or unknown.")
        if stored.decode(errors="replace") != user_bid:
            raise AuthenticationFailed("The token belongs to another user.")
    return user_bid


@cache
def _token_store() -> redis.Redis:
    return redis.Redis.from_url(
        settings.PLATFORM_TOKEN_STORE_URL, socket_timeout=2, socket_connect_timeout=2
    )


def platform_user(user_bid: str):
    """The shadow account of a platform user, made on first sight (once, whatever
    the number of concurrent first requests)."""
    identity = PlatformUser.objects.select_related("user").filter(user_bid=user_bid).first()
    if identity is None:
        try:
            with transaction.atomic():
                user = get_user_model().objects.create_user(username=SHADOW_PREFIX + user_bid)
                identity = PlatformUser.objects.create(user=user, user_bid=user_bid)
        except IntegrityError:  # made meanwhile by a concurrent request
            identity = PlatformUser.objects.select_related("user").get(user_bid=user_bid)
    user = identity.user
    setattr(user, USER_BID_ATTRIBUTE, user_bid)
    return user


def user_for_token(token: str):
    user = platform_user(user_bid_from_token(token))
    if not user.is_active:
        raise AuthenticationFailed("This account is disabled.")
    return user


class PlatformTokenAuthentication(BaseAuthentication):
    """DRF authentication by the platform's token. Absent: the next class decides. A
    token from the cookie is a browser's credential: unsafe methods then pass Django's
    CSRF check, as a session would."""

    def authenticate(self, request):
        if not settings.PLATFORM_JWT_SECRET:
            return None
        found = token_from(request._request)
        if found is None:
            return None
        token, source = found
        try:
            user = user_for_token(token)
        except AuthenticationFailed:
            if source == "cookie" and _other_credentials(request._request):
                return None  # a stale platform cookie beside a session or a DRF token
            raise
        if source == "cookie":
            SessionAuthentication().enforce_csrf(request)
        return user, token

    def authenticate_header(self, request) -> str:
        if settings.PLATFORM_JWT_SECRET:
            return 'Bearer realm="api"'
        return TokenAuthentication().authenticate_header(request)  # local tokens only


def _other_credentials(request) -> bool:
    return bool(
        request.META.get("HTTP_AUTHORIZATION") or settings.SESSION_COOKIE_NAME in request.COOKIES
    )


class PlatformTokenMiddleware:
    """The same for the checkout pages: a request with no session but a valid
    platform token is that platform user's. An invalid token leaves it anonymous (the
    page asks to sign in); forms keep Django's CSRF protection."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.PLATFORM_JWT_SECRET and not request.path.startswith("/api/"):
            found = token_from(request)
            if found is not None and not request.user.is_authenticated:
                with contextlib.suppress(AuthenticationFailed, TokenStoreUnavailable):
                    request.user = user_for_token(found[0])
        return self.get_response(request)
