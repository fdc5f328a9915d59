"""Payment providers behind the protocol of ``base``: a package each for Ping++ and
Stripe (``api`` calls the SDK, ``errors``, ``payloads``/``events``, ``rows``), the
sandbox as one module, and the payload readers they share in ``payloads``.

Nothing outside this package imports a provider SDK (``stripe``, ``pingpp``).
"""
