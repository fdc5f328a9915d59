"""The variables of the platform bridge (bridge/): the platform's user tokens and the
outbound events it hears. Part of ``payments_project.variables.VARIABLES``."""

from __future__ import annotations

from payments_project.variables import INT, STR, Variable

PLATFORM_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "PLATFORM_JWT_SECRET",
        STR,
        "",
        "platform",
        "The platform's token signing secret (its SECRET_KEY): its users' HS256 JWTs, "
        "sent as the Token header, Authorization: Bearer or the token cookie, sign them in "
        "here. Empty: platform tokens are not read.",
        secret=True,
    ),
    Variable(
        "PLATFORM_TOKEN_STORE_URL",
        STR,
        "",
        "platform",
        "The platform's Redis token store (redis://host:6379/0). When set, a token must be "
        "in it and map to the token's user, so that a token logged out on the platform "
        "stops working here.",
        secret=True,
    ),
    Variable(
        "PLATFORM_TOKEN_KEY_PREFIX",
        STR,
        "ai-shifu:user:",
        "platform",
        "Key prefix of the token store: <prefix><token> holds the user_bid.",
    ),
    Variable(
        "PLATFORM_WEBHOOK_URL",
        STR,
        "",
        "platform",
        "Where outbound events (order.paid, refund.succeeded, entitlement.granted...) are "
        "POSTed, signed; https:// (http:// only to loopback). More endpoints in the admin.",
    ),
    Variable(
        "PLATFORM_WEBHOOK_SECRET",
        STR,
        "",
        "platform",
        "The HMAC-SHA256 secret of PLATFORM_WEBHOOK_URL's X-Signature header.",
        secret=True,
    ),
    Variable(
        "PLATFORM_WEBHOOK_RETRY_BASE_SECONDS",
        INT,
        10,
        "platform",
        "First retry of a failed event delivery after this many seconds, doubling (at most "
        "an hour apart).",
    ),
    Variable(
        "PLATFORM_WEBHOOK_RETRY_HOURS",
        INT,
        72,
        "platform",
        "A delivery still failing after this many hours is dead-lettered (listed in the "
        "admin, where staff send it again).",
    ),
    Variable(
        "PLATFORM_WEBHOOK_TIMEOUT_SECONDS",
        INT,
        5,
        "platform",
        "How long one event POST may take before it counts as failed.",
    ),
)
