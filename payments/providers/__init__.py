"""Payment providers: one module each, behind the protocol of ``base``.

Nothing outside this package imports a provider SDK (``stripe``, ``pingpp``).
"""
