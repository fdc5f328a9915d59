"""Alipay's open platform, direct (not through Ping++): QR, desktop and phone pages,
queries, refunds, closes and asynchronous notifications, RSA2-signed both ways."""

from payments.providers.alipay.provider import AlipayProvider

__all__ = ["AlipayProvider"]
