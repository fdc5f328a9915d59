"""Partner API keys: the platform's backend, sent as ``X-Api-Key``.

Several named keys, each with scopes (``entitlements``, ``products``), stored as their
SHA-256 digest; made with ``manage.py api_key_create`` (the key is shown once) and
revoked with ``manage.py api_key_revoke`` or in the admin.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from bridge.models import ApiKey, Scope
from payments_project.errors import InvalidInput, ServiceError

# Keys look like psk_<43 url-safe characters>; the prefix lets log redaction and secret
# scanners recognise them.
KEY_PREFIX = "psk_"
HEADER = "X-Api-Key"
LAST_USED_EVERY = timedelta(minutes=1)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """A new key named ``name`` with ``scopes``: (row, the key, to show once)."""
    name = name.strip()
    unknown = sorted(set(scopes) - set(Scope.values))
    if not name:
        raise InvalidInput("A key needs a name.", code="name_required")
    if unknown or not scopes:
        raise InvalidInput(
            f"Scopes are {', '.join(Scope.values)}; got {', '.join(unknown) or 'none'}.",
            code="scope_unknown",
        )
    if ApiKey.objects.filter(name=name).exists():
        raise ServiceError(f"A key named {name!r} exists.", code="api_key_exists")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey.objects.create(
        name=name, prefix=key[:10], digest=_digest(key), scopes=sorted(set(scopes))
    )
    return row, key


def api_key_revoke(*, name: str) -> ApiKey:
    """Revoke the key named ``name``: it stops working at once."""
    row = ApiKey.objects.filter(name=name).first()
    if row is None:
        raise ServiceError(f"No key named {name!r}.", code="api_key_not_found")
    if row.revoked_at is None:
        row.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])
    return row


def api_key_find(key: str) -> ApiKey | None:
    """The live key ``key`` is, noting when it was used (at most once a minute)."""
    if not key.startswith(KEY_PREFIX):
        return None
    row = ApiKey.objects.filter(digest=_digest(key), revoked_at__isnull=True).first()
    now = timezone.now()
    if row is not None and (row.last_used_at is None or row.last_used_at < now - LAST_USED_EVERY):
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
    return row


class Partner:
    """Who a request with a partner key is: ``request.user`` for it. Not a Django
    user: no model permission, no orders of its own."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.name = key.name
        self.scopes = frozenset(key.scopes)

    def has_perm(self, perm: str, obj=None) -> bool:
        return False

    def has_perms(self, perms, obj=None) -> bool:
        return False

    def get_username(self) -> str:
        return f"partner:{self.name}"

    def __str__(self) -> str:
        return self.get_username()


class ApiKeyAuthentication(BaseAuthentication):
    """DRF authentication by ``X-Api-Key``; without the header the next class decides."""

    def authenticate(self, request):
        key = request.META.get("HTTP_X_API_KEY")
        if key is None:
            return None
        row = api_key_find(key.strip())
        if row is None:
            raise AuthenticationFailed("Unknown or revoked API key.")
        return Partner(row), row

    def authenticate_header(self, request) -> str:
        return f'ApiKey header="{HEADER}"'


def has_scope(request, scope: str) -> bool:
    user = request.user
    return isinstance(user, Partner) and scope in user.scopes


class PartnerScope(BasePermission):
    """A partner key with the view's ``partner_scope``: no key 401, another scope 403."""

    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        return has_scope(request, view.partner_scope)
