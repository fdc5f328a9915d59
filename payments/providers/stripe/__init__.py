"""The stripe channel, as a package.

- ``api``: the only module that calls the stripe SDK (``StripeApi``);
- ``errors``: the SDK's errors as ProviderError subclasses;
- ``payloads`` and ``events``: Stripe's JSON as PaymentState, RefundState, ProviderEvent;
- ``params``: what is sent for a PaymentRequest (amount checks, return URLs);
- ``rows``: the StripeOrder attempt rows;
- ``provider``: ``StripeProvider``, which composes them (settings name it here).
"""

from payments.providers.stripe.provider import StripeProvider

__all__ = ["StripeProvider"]
