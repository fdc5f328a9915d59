"""A self-signed certificate, as WeChat Pay's platform certificate is held here: for the
tests and the benchmark (no Django needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def self_signed_certificate(
    key: rsa.RSAPrivateKey, *, days: int = 365, start: datetime | None = None
) -> x509.Certificate:
    """A certificate of ``key`` as WeChat Pay issues its platform's (valid ``days``)."""
    start = start or datetime.now(UTC) - timedelta(days=1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (double)")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
