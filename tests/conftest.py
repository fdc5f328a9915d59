"""Suite-wide fixtures and the MariaDB guard.

Tests marked ``mariadb`` need MySQL/MariaDB (row locks, the legacy schema). The test
command runs the suite twice: on SQLite without them, then on MariaDB with all. Run
plainly on SQLite they are skipped with a reason, except in CI, where a missing
MariaDB fails them: they must never skip silently there.
"""

import os

import pytest
from django.db import connection

from tests.alipay import (  # noqa: F401  (fixtures)
    alipay,
    alipay_channel,
    alipay_double,
    alipay_keys,
    alipay_settings,
)
from tests.localstripe import localstripe, stripe_local  # noqa: F401  (fixtures)
from tests.wechatpay import (  # noqa: F401  (fixtures)
    wechatpay,
    wechatpay_channel,
    wechatpay_double,
    wechatpay_keys,
    wechatpay_settings,
)


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "mysql":
        return
    reason = (
        "needs MariaDB/MySQL: run with DATABASE_URL=mysql://root@127.0.0.1:3306/test "
        "(the README's test command does)"
    )
    for item in items:
        if item.get_closest_marker("mariadb") is None:
            continue
        if os.environ.get("CI"):
            item.add_marker(pytest.mark.usefixtures("_fail_without_mariadb"))
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def _fail_without_mariadb():
    pytest.fail("this test needs MariaDB/MySQL and CI must provide it")


@pytest.fixture
def sandbox_channel(settings):
    """The sandbox as the only, default, channel (it needs DEBUG)."""
    settings.DEBUG = True
    settings.PAYMENT_CHANNELS_ENABLED = ["sandbox"]
    settings.DEFAULT_PAYMENT_CHANNEL = "sandbox"
    return settings
