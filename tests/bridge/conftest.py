"""Fixtures of the platform bridge's tests: a fake platform secret and its tokens, a
partner key, and a loopback receiver of outbound events."""

from __future__ import annotations

import time

import jwt
import pytest

from bridge.partners import api_key_create
from tests.bridge.receiver import EventReceiver

PLATFORM_SECRET = "platform-test-secret-of-the-fake-ai-shifu"
RECEIVER_SECRET = "whsec-platform-receiver-0123456789"
USER_BID = "0b1e5d3f6a7c4e2d9f8a1b2c3d4e5f60"


def platform_token(user_bid: str = USER_BID, *, secret: str = PLATFORM_SECRET, **claims) -> str:
    """A token as the platform makes them: HS256, ``user_id`` and ``time_stamp``."""
    return jwt.encode(
        {"user_id": user_bid, "time_stamp": time.time(), **claims}, secret, algorithm="HS256"
    )


@pytest.fixture
def platform(settings):
    settings.PLATFORM_JWT_SECRET = PLATFORM_SECRET
    settings.PLATFORM_TOKEN_STORE_URL = ""
    return settings


@pytest.fixture
def partner_key(db):
    def make(*scopes: str, name: str = "platform-backend") -> str:
        return api_key_create(name=name, scopes=list(scopes))[1]

    return make


@pytest.fixture
def receiver(settings):
    """A receiver at PLATFORM_WEBHOOK_URL, events sent in-process after commit."""
    with EventReceiver(RECEIVER_SECRET) as server:
        settings.PLATFORM_WEBHOOK_URL = server.url
        settings.PLATFORM_WEBHOOK_SECRET = RECEIVER_SECRET
        settings.PLATFORM_WEBHOOK_RETRY_BASE_SECONDS = 10
        settings.PLATFORM_WEBHOOK_TIMEOUT_SECONDS = 5
        yield server
