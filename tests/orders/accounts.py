"""Creators' Alipay accounts for the order tests: each a payment integration with its
own loopback gateway and keys (``mine`` for CREATOR, ``theirs`` for OTHER)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from orders import services
from payments import credentials, integrations
from payments.models import AlipayOrder
from tests.alipay import new_key, private_pem, public_pem
from tests.factories import ProductFactory
from tests.payments.alipay_double import AlipayDouble

CREATOR, OTHER = "creator-c", "creator-d"


@dataclass
class Account:
    """A creator's Alipay account: its integration and its own gateway."""

    creator_bid: str
    integration_bid: str
    double: AlipayDouble
    alipay_key: object

    @property
    def url(self) -> str:
        return f"/webhooks/alipay/{self.integration_bid}/"


@pytest.fixture
def sealing_key(settings):
    settings.PAYMENT_CREDENTIALS_KEYS = [credentials.new_key()]


@pytest.fixture(scope="module")
def creator_keys():
    return {"app": new_key(), "alipay": new_key(), "other_app": new_key(), "other": new_key()}


def _account(creator_bid, app_id, app_key, alipay_key) -> Iterator[Account]:
    with AlipayDouble(
        app_id=app_id, app_public_key=app_key.public_key(), alipay_key=alipay_key
    ) as double:
        row = integrations.integration_save(
            channel="alipay",
            creator_bid=creator_bid,
            public={"app_id": app_id, "gateway_url": double.gateway_url},
            secret={
                "app_private_key": private_pem(app_key),
                "alipay_public_key": public_pem(alipay_key),
            },
            name=f"{creator_bid}'s Alipay",
        )
        yield Account(creator_bid, row.integration_bid, double, alipay_key)


@pytest.fixture
def mine(alipay_channel, creator_keys, sealing_key) -> Iterator[Account]:
    yield from _account(CREATOR, "2021000000000777", creator_keys["app"], creator_keys["alipay"])


@pytest.fixture
def theirs(alipay_channel, creator_keys, sealing_key) -> Iterator[Account]:
    yield from _account(OTHER, "2021000000000888", creator_keys["other_app"], creator_keys["other"])


def creators_order(price: str = "29.90", creator_bid: str = CREATOR):
    product = ProductFactory(price=Decimal(price), currency="cny", creator_bid=creator_bid)
    order, _ = services.order_create(user_bid="buyer", product_bid=product.product_bid)
    started = services.payment_start(order=order, method="alipay_qr")
    attempt = AlipayOrder.objects.get(provider_attempt_id=started.attempt.attempt_bid)
    order.refresh_from_db()
    return order, attempt
