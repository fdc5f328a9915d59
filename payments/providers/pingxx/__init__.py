"""The pingxx channel (Ping++), as a package.

- ``api``: the only module that calls the pingpp SDK;
- ``errors``: the SDK's errors as ProviderError subclasses;
- ``payloads`` and ``events``: Ping++'s JSON as PaymentState, RefundState, ProviderEvent,
  and the webhook signature check;
- ``params``: what is sent for a request (currency, channel extras, subject and body);
- ``keys``: our private key and Ping++'s webhook key, from the settings;
- ``rows``: the PingxxOrder attempt rows;
- ``provider``: ``PingxxProvider``, which composes them (settings name it here).
"""

from payments.providers.pingxx.provider import PingxxProvider

__all__ = ["PingxxProvider"]
