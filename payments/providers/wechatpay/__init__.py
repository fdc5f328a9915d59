"""The wechatpay channel (WeChat Pay API v3, natively), as a package.

- ``config``: one merchant account (the platform's, from the settings, or a creator's),
  and what is wrong with it;
- ``api``: the only module that calls the wechatpayv3 SDK;
- ``errors``: WeChat Pay's refusals and the SDK's exceptions as ProviderError subclasses;
- ``payloads``: what is sent, and transactions and refunds as PaymentState, RefundState;
- ``events``: the notifications' signature check and decryption, and their events;
- ``provider``: ``WechatpayProvider``, which composes them with the platform's attempt
  rows (``payments.providers.native_rows``); settings name it here.
"""

from payments.providers.wechatpay.config import WechatpayConfig
from payments.providers.wechatpay.provider import WechatpayProvider

__all__ = ["WechatpayConfig", "WechatpayProvider"]
