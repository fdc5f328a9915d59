"""The platform's old frontend, served as it is: its seven order endpoints under
``/api/order/`` (``src/cook-web/src/c-api/order.ts`` of ai-shifu), in its old envelope.

Switched on by ``LEGACY_ORDER_API_ENABLED``; off, they are unknown paths (404). Each view
maps the old request onto the services the REST API calls and the answer back onto the
old shapes; nothing here decides anything about an order. The REST API under
``/api/orders/`` stays the documented one (``docs/integration.md``).

- ``codes``: the envelope, the old status numbers and the old error numbers;
- ``channels``: the old channel names as this service's channel and method;
- ``shapes``: an order, a started payment and an attempt as the old DTOs;
- ``views`` and ``urls``: the endpoints.
"""
