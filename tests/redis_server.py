"""The machine's Redis, for the tests that need a real one (shared cache, Celery)."""

from __future__ import annotations

import os

import pytest
import redis


def require_redis(url: str) -> redis.Redis:
    """A client of the Redis at ``url``, emptied; the test is skipped without it, except
    in CI, where it fails: those tests never skip silently there."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {url} is not reachable, and CI must provide it")
        pytest.skip(f"needs Redis at {url}")
    client.flushdb()
    return client
