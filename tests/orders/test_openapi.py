"""The OpenAPI schema, the offline Swagger UI, and schemathesis against the running API."""

import re
from collections import defaultdict
from decimal import Decimal
from io import StringIO

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orders import selectors, services
from payments import registry
from payments.services import webhook_receive
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

ERROR_STATUSES = {"400", "401", "403", "404", "409", "413", "415", "429", "502", "503"}


def the_schema() -> dict:
    return APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()


def test_the_schema_validates_without_warnings():
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--format=openapi-json", stdout=out)
    assert out.getvalue().startswith("{")


def test_the_schema_describes_every_endpoint_and_its_errors():
    schema = the_schema()
    operations = {
        (method.upper(), path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) == {
        ("GET", "/api/products/"),
        ("POST", "/api/products/"),
        ("GET", "/api/products/{product_bid}/"),
        ("PATCH", "/api/products/{product_bid}/"),
        ("GET", "/api/orders/"),
        ("POST", "/api/orders/"),
        ("GET", "/api/orders/{order_bid}/"),
        ("POST", "/api/orders/{order_bid}/pay/"),
        ("POST", "/api/orders/{order_bid}/sync/"),
        ("POST", "/api/orders/{order_bid}/cancel/"),
        ("GET", "/api/refunds/"),
        ("POST", "/api/refunds/"),
        ("GET", "/api/refunds/{refund_bid}/"),
    }
    for key, operation in operations.items():
        errors = {code for code in operation["responses"] if code >= "400"}
        assert "401" in errors, key
        assert errors <= ERROR_STATUSES, key
        for code in errors:
            content = operation["responses"][code]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (key, code)
    pay = operations["POST", "/api/orders/{order_bid}/pay/"]["responses"]
    assert {"400", "401", "403", "404", "409", "413", "415", "429", "502", "503"} <= set(pay)
    assert operations["POST", "/api/orders/"]["requestBody"]["required"]
    assert {} in operations["GET", "/api/products/"]["security"]

    components = schema["components"]
    error = components["schemas"]["Error"]
    assert set(error["required"]) == {"code", "message", "errors"}
    assert {"payment_channel", "details"} <= set(error["properties"])
    payment = components["schemas"]["Payment"]
    assert {"client_secret", "publishable_key", "checkout_url", "checkout_session_id"} <= set(
        payment["properties"]
    )
    assert {"credential", "qr_url"} <= set(payment["properties"])
    assert "client_secret" not in payment["required"]
    money = [
        components["schemas"]["Order"]["properties"][name]
        for name in ("payable_amount", "paid_amount", "refunded_amount", "refundable_amount")
    ]
    money += [
        components["schemas"]["Product"]["properties"]["price"],
        components["schemas"]["Refund"]["properties"]["amount"],
        payment["properties"]["amount"],
    ]
    assert all((m["type"], m["format"]) == ("string", "decimal") for m in money), money
    assert set(components["securitySchemes"]) == {"tokenAuth", "cookieAuth"}


def test_swagger_ui_loads_its_assets_from_this_service(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    urls += re.findall(r"""url:\s*["']([^"']+)["']""", html)
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls), urls
    assert any(url.endswith("swagger-ui.css") for url in urls), urls
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"{url} is not served by this service"
    assets = [url for url in urls if url.startswith("/static/")]
    assert len(assets) >= 3, urls  # the bundle, the preset, the stylesheet (and the icon)
    for url in assets:
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file"
        served = client.get(url)  # WhiteNoise, as in production
        assert served.status_code == 200, url
        assert b"".join(served.streaming_content), url
    assert client.get("/api/schema/").status_code == 200


# ---- schemathesis ----


@pytest.fixture(params=["customer", "clerk"])
def seeded(request, sandbox_channel):
    """A user with a token, a partly refunded purchase and an unpaid order; a clerk
    also holds the permissions to add refunds and to add and change products."""
    cache.clear()  # no throttle history from earlier tests
    user = UserFactory()
    if request.param == "clerk":
        user.user_permissions.add(
            *Permission.objects.filter(codename__in=["add_refund", "add_product", "change_product"])
        )
    token = Token.objects.create(user=user).key
    bid = selectors.user_bid_for(user)
    paid_product = ProductFactory(price=Decimal("19.90"))
    product = ProductFactory(price=Decimal("9.90"))
    paid, _ = services.order_create(user_bid=bid, product_bid=paid_product.product_bid)
    started = services.payment_start(order=paid)
    body, headers = registry.get_provider("sandbox").complete(
        started.attempt.attempt_bid, succeeded=True
    )
    webhook_receive(channel="sandbox", body=body, headers=headers)
    refund = services.refund_request(order=paid, amount=Decimal("5.00"), reason="seed")
    unpaid, _ = services.order_create(user_bid=bid, product_bid=product.product_bid)
    return {
        "token": token,
        "product_bid": [product.product_bid, paid_product.product_bid],
        "order_bid": [unpaid.order_bid, paid.order_bid],
        "refund_bid": [refund.refund_bid],
        "clerk": request.param == "clerk",
    }


@pytest.fixture
def wsgi_app():
    """The service's WSGI app, keeping the test's connection across requests as
    Django's test client does (so the test's transaction holds the seeded rows)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_api_answers_as_its_schema_says(seeded, wsgi_app):
    """Every operation: first the seeded purchase path, then generated input (valid and
    not, with random and seeded rows in the path). Never a 5xx, and every answer is
    documented by its status code, content type and schema."""
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    assert len(operations) == 13
    auth = {"Authorization": f"Token {seeded['token']}"}
    unpaid, paid = seeded["order_bid"]
    product = seeded["product_bid"][0]
    clerk = seeded["clerk"]

    happy = [
        ("POST /api/orders/", {}, {"product": product}, 200),  # the unpaid one, reused
        ("POST /api/orders/{order_bid}/pay/", {"order_bid": unpaid}, {}, 201),
        ("POST /api/orders/{order_bid}/sync/", {"order_bid": unpaid}, None, 200),
        ("POST /api/refunds/", {}, {"order": paid, "reason": "x"}, 201 if clerk else 403),
        ("POST /api/products/", {}, {"name": "N", "price": "1.00"}, 201 if clerk else 403),
        ("PATCH /api/products/{product_bid}/", {"product_bid": product}, {}, 200 if clerk else 403),
    ]
    for label, path, body, expected in happy:
        operation = operations[label]
        case = operation.Case(path_parameters=path, **({} if body is None else {"body": body}))
        response = case.call_and_validate(headers=auth, checks=CHECKS)
        assert response.status_code == expected, (label, response.text)

    for label, operation in operations.items():  # anonymous, and with a stale token
        path = {p.name: seeded[p.name][0] for p in operation.path_parameters}
        for headers in ({}, {"Authorization": "Token 0123456789abcdef"}):
            response = operation.Case(path_parameters=path).call_and_validate(
                headers=headers, checks=CHECKS
            )
            expected = 200 if label.startswith("GET /api/products/") and not headers else 401
            assert response.status_code == expected, (label, headers, response.text)

    answers = defaultdict(set)
    for operation in operations.values():
        names = [p.name for p in operation.path_parameters]
        strategies = [operation.as_strategy()]
        # Invalid input in the body and query; an invalid path is no route of the API.
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if names:
                strategies.append(
                    st.sampled_from(seeded[names[0]]).flatmap(
                        lambda bid, op=operation, name=names[0], mode=mode: op.as_strategy(
                            generation_mode=mode, path_parameters={name: bid}
                        )
                    )
                )
            elif mode == GenerationMode.NEGATIVE:
                strategies.append(operation.as_strategy(generation_mode=mode))

        @given(case=st.one_of(strategies))
        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            response = case.call_and_validate(headers=auth, checks=CHECKS)
            answers[case.operation.label].add(response.status_code)

        fuzz()

    # The token works and the seeded rows were found: every read answered 200 at least once.
    assert all(200 in answers[label] for label in operations if label.startswith("GET"))
