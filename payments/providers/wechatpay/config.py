"""One WeChat Pay merchant account: the platform's (from the settings) or a creator's
(from a payment integration's fields), and what is wrong with it.

Reading a configuration never raises and never calls the network: an account left
unset (the platform's, where only creators collect) is built all the same, and its
``problems()`` say why it cannot be used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from payments.providers.merchant import notify_url
from payments_project.checks import KeyUnreadable, read_pem

CHANNEL = "wechatpay"
# WeChat Pay's API v3 key is 32 bytes: the AES-256-GCM key of notifications.
API_V3_KEY_BYTES = 32
PRIVATE_KEY_HEADER = "-----BEGIN PRIVATE KEY-----"


@dataclass(frozen=True)
class WechatpayConfig:
    """A WeChat Pay merchant (mchid) paying into one app (appid). Keys are PEM text."""

    app_id: str = ""
    mch_id: str = ""
    merchant_serial_no: str = ""  # the serial of our API certificate, as WeChat shows it
    private_key: str = field(default="", repr=False)  # signs our requests (apiclient_key)
    api_v3_key: str = field(default="", repr=False)  # decrypts notifications
    platform_cert: str = ""  # WeChat Pay's certificate: verifies answers, notifications
    base_url: str = ""
    notify_url: str = ""
    # Files named in the settings that could not be read.
    read_problems: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls) -> WechatpayConfig:
        """The platform's own account (WECHATPAY_*), notified at /webhooks/wechatpay/."""
        unread: list[str] = []
        return cls(
            app_id=settings.WECHATPAY_APP_ID or "",
            mch_id=settings.WECHATPAY_MCH_ID or "",
            merchant_serial_no=settings.WECHATPAY_MERCHANT_SERIAL_NO or "",
            private_key=_pem("WECHATPAY_PRIVATE_KEY", "WECHATPAY_PRIVATE_KEY_PATH", unread),
            api_v3_key=settings.WECHATPAY_API_V3_KEY or "",
            platform_cert=_pem("WECHATPAY_PLATFORM_CERT", "WECHATPAY_PLATFORM_CERT_PATH", unread),
            base_url=settings.WECHATPAY_BASE_URL or "",
            notify_url=notify_url(CHANNEL),
            read_problems=tuple(unread),
        )

    @classmethod
    def from_merchant(
        cls, public: Mapping[str, str], secret: Mapping[str, str], integration_bid: str = ""
    ) -> WechatpayConfig:
        """A creator's account, from its integration's fields (``merchant_fields``),
        notified at /webhooks/wechatpay/<integration_bid>/. A blank ``base_url`` is the
        platform's WECHATPAY_BASE_URL."""

        def value(fields: Mapping[str, str], name: str) -> str:
            return str(fields.get(name) or "").strip()

        return cls(
            app_id=value(public, "app_id"),
            mch_id=value(public, "mch_id"),
            merchant_serial_no=value(public, "merchant_serial_no"),
            private_key=value(secret, "private_key").replace("\\n", "\n"),
            api_v3_key=value(secret, "api_v3_key"),
            platform_cert=value(secret, "platform_cert").replace("\\n", "\n"),
            base_url=value(public, "base_url") or settings.WECHATPAY_BASE_URL or "",
            notify_url=notify_url(CHANNEL, integration_bid),
        )

    # ---- what is wrong ----

    def account_problems(self) -> list[str]:
        """What is wrong with the fields that are set (blank ones are not checked)."""
        problems = list(self.read_problems)
        if self.mch_id and not self.mch_id.isdigit():
            problems.append("mch_id must be digits.")
        if self.api_v3_key and len(self.api_v3_key.encode("utf-8")) != API_V3_KEY_BYTES:
            problems.append(f"api_v3_key must be exactly {API_V3_KEY_BYTES} bytes.")
        if self.private_key:
            try:
                merchant_private_key(self.private_key)
            except ValueError as exc:
                problems.append(f"private_key: {exc}")
        if self.platform_cert:
            try:
                certificate = platform_certificate(self.platform_cert)
            except ValueError as exc:
                problems.append(f"platform_cert: {exc}")
            else:
                problems += _validity_problems(certificate)
        if self.base_url and not self.base_url.startswith(("https://", "http://")):
            problems.append("base_url must be an http(s) URL.")
        return problems

    def missing(self, names: tuple[str, ...]) -> list[str]:
        return [f"{name} is not set." for name in names if not getattr(self, name)]

    def problems(self) -> list[str]:
        """Why requests cannot be made with this account; [] when they can."""
        required = ("app_id", "mch_id", "merchant_serial_no", "private_key", "api_v3_key",
                    "platform_cert", "base_url")  # fmt: skip
        problems = self.missing(required) + self.account_problems()
        if not self.notify_url.startswith("https://"):
            problems.append("PAYMENT_NOTIFY_BASE_URL must be an https URL (WeChat Pay's rule).")
        return problems

    def webhook_problems(self) -> list[str]:
        """Why notifications cannot be verified and read; [] when they can."""
        problems = self.missing(("mch_id", "api_v3_key", "platform_cert"))
        unreadable = [p for p in self.account_problems() if p.startswith(("platform", "api_v3"))]
        return problems + unreadable + [p for p in self.read_problems if "CERT" in p]


def _pem(text_variable: str, path_variable: str, unread: list[str]) -> str:
    try:
        return read_pem(text_variable, path_variable)[0]
    except KeyUnreadable as exc:
        unread.append(str(exc))
        return ""


def merchant_private_key(text: str) -> rsa.RSAPrivateKey:
    """Our RSA private key from PEM (PKCS#8 or PKCS#1) or bare PKCS#8 base64."""
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        text = f"{PRIVATE_KEY_HEADER}\n{text}\n-----END PRIVATE KEY-----"
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a readable, unencrypted PEM private key ({exc}).") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key.")
    return key


def private_key_pkcs8(text: str) -> str:
    """The key as PKCS#8 PEM, the only form the SDK reads."""
    return (
        merchant_private_key(text)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


def platform_certificate(text: str) -> x509.Certificate:
    """WeChat Pay's platform certificate, from PEM, with an RSA public key."""
    try:
        certificate = x509.load_pem_x509_certificate(text.strip().encode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"not a readable PEM certificate ({exc}).") from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise ValueError("the certificate's key is not RSA.")
    return certificate


def serial_hex(certificate: x509.Certificate) -> str:
    """A certificate's serial as WeChat Pay writes it in Wechatpay-Serial: upper-case hex."""
    return format(certificate.serial_number, "X")


def public_key_pem(certificate: x509.Certificate) -> str:
    return (
        certificate.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _validity_problems(certificate: x509.Certificate) -> list[str]:
    now = datetime.now(UTC)
    if certificate.not_valid_after_utc < now:
        return [f"platform_cert expired on {certificate.not_valid_after_utc:%Y-%m-%d}."]
    if certificate.not_valid_before_utc > now:
        return [f"platform_cert is valid only from {certificate.not_valid_before_utc:%Y-%m-%d}."]
    return []
