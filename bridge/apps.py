from django.apps import AppConfig


class BridgeConfig(AppConfig):
    """The platform bridge: the platform's users (its tokens), its backend (partner
    keys) and what it hears from us (signed outbound events)."""

    name = "bridge"
    verbose_name = "Platform"

    def ready(self) -> None:
        from bridge import (
            checks,  # noqa: F401  (registers its system checks)
            openapi,  # noqa: F401  (describes its credentials in the schema)
        )
