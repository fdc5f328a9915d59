"""The RSA keys of the pingxx channel: ours, which signs requests, and Ping++'s public
key, which verifies webhooks. Read from the settings (text, or a file's path)."""

from __future__ import annotations

from Crypto.PublicKey import RSA
from django.core.exceptions import ImproperlyConfigured

from payments_project.checks import KeyUnreadable, read_pem


def merchant_private_key() -> str:
    """The PEM of our private key ("" when unset); ImproperlyConfigured when unusable."""
    try:
        pem, source = read_pem("PINGXX_PRIVATE_KEY", "PINGXX_PRIVATE_KEY_PATH")
    except KeyUnreadable as exc:
        raise ImproperlyConfigured(str(exc)) from None
    if pem:
        try:
            key = RSA.import_key(pem)
        except (ValueError, IndexError, TypeError):
            key = None
        if key is None or not key.has_private():
            raise ImproperlyConfigured(f"{source} does not hold an RSA private key.")
    return pem


def webhook_public_key() -> tuple[RSA.RsaKey | None, str]:
    """(Ping++'s webhook key, "") or (None, why it cannot be used)."""
    try:
        pem, source = read_pem("PINGXX_WEBHOOK_PUBLIC_KEY", "PINGXX_WEBHOOK_PUBLIC_KEY_PATH")
    except KeyUnreadable as exc:
        return None, str(exc)
    if not pem:
        return None, "PINGXX_WEBHOOK_PUBLIC_KEY (or _PATH) is not set."
    try:
        return RSA.import_key(pem), ""
    except (ValueError, IndexError, TypeError):
        return None, f"{source} does not hold an RSA public key."
