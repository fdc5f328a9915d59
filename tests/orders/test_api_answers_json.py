"""Every error under /api/ answers JSON with a stable ``code``: unknown paths and methods,
HEAD and OPTIONS, the schema and Swagger UI views, and CSRF failures.

Plain requests through Django's test client (the schemathesis run of test_openapi.py
only sends what the schema documents).
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.middleware.csrf import CsrfViewMiddleware
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token

from payments_project.views import csrf_failure
from tests.factories import OrderFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert {"code", "message", "errors"} <= set(body), body
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture
def token_client():
    """A clerk who may add, change and delete products: refused by method, not by role."""
    user = UserFactory()
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_product", "change_product", "delete_product"])
    )
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    client.user = user
    return client


UNKNOWN = ["/api/nothing-here/", "/api/orders", "/api/orders/x/y/z/", "/api/v2/orders/"]


@pytest.mark.parametrize("path", UNKNOWN)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
def test_an_unknown_api_path_answers_a_json_404(path, method):
    client = Client(enforce_csrf_checks=True)  # a POST without a CSRF token included
    response = client.generic(method, path, b'{"a": 1}', content_type="application/json")
    assert_json_error(response, 404, "not_found")


@pytest.mark.parametrize("path", UNKNOWN)
def test_head_of_an_unknown_api_path_is_a_json_404(path):
    response = Client().head(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_a_method_an_endpoint_does_not_have_is_a_json_405(token_client):
    order = OrderFactory()
    product = ProductFactory()
    cases = [
        ("DELETE", "/api/orders/"),
        ("PUT", "/api/orders/"),
        ("PATCH", f"/api/orders/{order.order_bid}/"),
        ("POST", f"/api/orders/{order.order_bid}/"),
        ("GET", f"/api/orders/{order.order_bid}/pay/"),
        ("DELETE", f"/api/orders/{order.order_bid}/cancel/"),
        ("PUT", "/api/products/"),
        ("DELETE", f"/api/products/{product.product_bid}/"),
        ("PATCH", "/api/refunds/"),
        ("TRACE", "/api/refunds/"),
        ("PROPFIND", "/api/products/"),
        ("POST", "/api/schema/"),
        ("DELETE", "/api/schema/"),
        ("POST", "/api/docs/"),
    ]
    for method, path in cases:
        response = token_client.generic(method, path, b"{}", content_type="application/json")
        assert_json_error(response, 405, "method_not_allowed")
        assert response["Allow"], (method, path)


def test_without_credentials_any_method_is_a_json_401():
    order = OrderFactory()
    for method, path in [
        ("GET", "/api/orders/"),
        ("DELETE", "/api/orders/"),
        ("POST", f"/api/orders/{order.order_bid}/pay/"),
        ("OPTIONS", "/api/refunds/"),
        ("PUT", "/api/refunds/"),
    ]:
        response = Client().generic(method, path)
        assert_json_error(response, 401, "not_authenticated")


def test_head_and_options_of_an_endpoint_answer_json(token_client):
    head = token_client.head("/api/orders/")
    assert head.status_code == 200 and head["Content-Type"].startswith("application/json")
    options = token_client.options("/api/orders/")
    assert options.status_code == 200 and options["Content-Type"].startswith("application/json")
    assert {"GET", "POST"} <= {m.strip() for m in options["Allow"].split(",")}
    assert options.json()["name"]


def test_errors_of_the_schema_and_docs_views_are_json(token_client):
    assert_json_error(token_client.get("/api/schema/", {"format": "xml"}), 404, "not_found")
    assert_json_error(token_client.put("/api/docs/", HTTP_ACCEPT="text/html"), 405,
                      "method_not_allowed")  # fmt: skip


def test_a_session_post_without_the_csrf_token_is_a_json_403():
    user = UserFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/orders/", {"product": "x"}, content_type="application/json")
    assert_json_error(response, 403, "csrf_failed")
    allowed = client.get("/api/orders/")  # reads need no token
    assert allowed.status_code == 200


def test_the_csrf_failure_view_answers_json_under_api_only():
    """CSRF_FAILURE_VIEW, for a view under /api/ that Django's middleware checks itself."""
    request = RequestFactory().post("/api/orders/", {"product": "x"})
    refused = CsrfViewMiddleware(lambda r: None).process_view(request, lambda r: None, (), {})
    assert_json_error(refused, 403, "csrf_failed")
    page = csrf_failure(RequestFactory().post("/orders/x/sync/"), reason="no token")
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html")


def test_bodies_the_api_cannot_read_are_json_errors(token_client):
    cases = [
        (b'{"product": ', "application/json", 400, "malformed_request"),
        (b"product=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"[1, 2]", "application/json", 400, "invalid"),
        (b'"text"', "application/json", 400, "invalid"),
    ]
    for body, content_type, status, code in cases:
        response = token_client.post("/api/orders/", body, content_type=content_type)
        assert_json_error(response, status, code)
    wrong_accept = token_client.get("/api/orders/", HTTP_ACCEPT="text/html")
    assert_json_error(wrong_accept, 406, "not_acceptable")


@pytest.mark.django_db
def test_a_refused_host_and_options_on_the_docs_answer_json(client):
    refused = client.get("/api/orders/", HTTP_HOST="evil.example.com")
    assert refused.status_code == 400
    assert refused["Content-Type"].startswith("application/json")
    assert refused.json()["code"] == "bad_request"
    options = client.options("/api/docs/")
    assert options.status_code == 405 and options.json()["code"] == "method_not_allowed"
