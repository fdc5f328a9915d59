"""The OpenAPI schema, the offline Swagger UI, and schemathesis against the running API.

Schemathesis runs with all its default checks (``DEFAULT_CHECKS``): the hand-written
purchase path and generated input through its Python API, a whole run of its engine
(examples, coverage, fuzzing and stateful phases, as ``schemathesis run`` does), and the
state machine of the schema's OpenAPI links. All at fixed seeds with bounded examples.
"""

import re
from collections import Counter, defaultdict
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
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.engine import Status, events
from schemathesis.engine import from_schema as engine_for
from schemathesis.transport.wsgi import WSGITransport

from bridge.partners import api_key_create
from orders import selectors, services
from payments import registry
from payments.tasks import webhook_deliver
from payments_project.openapi import FOLLOW, LINKS
from promos.batches import batch_create
from tests.factories import ProductFactory, UserFactory
from tests.promos.helpers import activation_spec

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
        ("PUT", "/api/products/{product_bid}/"),
        ("PATCH", "/api/products/{product_bid}/"),
        ("GET", "/api/entitlements/"),
        ("POST", "/api/entitlements/grant/"),
        ("POST", "/api/entitlements/revoke/"),
        ("GET", "/api/orders/"),
        ("POST", "/api/orders/"),
        ("GET", "/api/orders/{order_bid}/"),
        ("POST", "/api/orders/{order_bid}/pay/"),
        ("POST", "/api/orders/{order_bid}/sync/"),
        ("POST", "/api/orders/{order_bid}/cancel/"),
        ("GET", "/api/refunds/"),
        ("POST", "/api/refunds/"),
        ("GET", "/api/refunds/{refund_bid}/"),
        ("POST", "/api/coupon-batches/"),
        ("GET", "/api/coupon-batches/{coupon_bid}/"),
        ("POST", "/api/coupons/redeem/"),
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
    # The refusals a valid request can still meet are named with their codes.
    refused = operations["POST", "/api/orders/{order_bid}/pay/"]["responses"]["400"]
    assert {"payment_channel_not_enabled", "payment_method_invalid"} <= set(
        re.findall(r"`(\w+)`:", refused["description"])
    )
    assert (
        "refund_exceeds_refundable"
        in operations["POST", "/api/refunds/"]["responses"]["400"]["description"]
    )
    assert "409" in operations["PATCH", "/api/products/{product_bid}/"]["responses"]
    assert "400" in operations["GET", "/api/refunds/"]["responses"]  # a bad page_size

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
    assert set(components["securitySchemes"]) == {
        "tokenAuth", "cookieAuth", "platformToken", "partnerApiKey"
    }  # fmt: skip
    assert operations["GET", "/api/entitlements/"]["security"] == [{"partnerApiKey": []}]


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
    return seed(request.param)


def seed(role: str) -> dict:
    """A user with a token, a partly refunded purchase and an unpaid order; a clerk
    also holds the permissions to add refunds and to add and change products."""
    cache.clear()  # no throttle history from earlier tests
    user = UserFactory()
    if role == "clerk":
        user.user_permissions.add(
            *Permission.objects.filter(
                codename__in=[
                    "add_refund",
                    "add_product",
                    "change_product",
                    "add_couponbatch",
                    "view_couponbatch",
                ]
            )
        )
    token = Token.objects.create(user=user).key
    # The platform's backend, for the partner endpoints (sent beside the user's token,
    # which the other endpoints read first).
    api_key = api_key_create(name=f"platform-{role}", scopes=["entitlements", "products"])[1]
    bid = selectors.user_bid_for(user)
    paid_product = ProductFactory(price=Decimal("19.90"))
    product = ProductFactory(price=Decimal("9.90"))
    paid, _ = services.order_create(user_bid=bid, product_bid=paid_product.product_bid)
    started = services.payment_start(order=paid)
    body, headers = registry.get_provider("sandbox").complete(
        started.attempt.attempt_bid, succeeded=True
    )
    webhook_deliver(channel="sandbox", body=body, headers=headers)
    refund = services.refund_request(order=paid, amount=Decimal("5.00"), reason="seed")
    unpaid, _ = services.order_create(user_bid=bid, product_bid=product.product_bid)
    gift = ProductFactory(price=Decimal("29.90"))
    batch, codes = batch_create(spec=activation_spec(gift.product_bid, count=3), actor=None)
    return {
        "coupon_bid": [batch.coupon_bid],
        "activation_code": codes,
        "gift": gift.product_bid,
        "token": token,
        "api_key": api_key,
        "product_bid": [product.product_bid, paid_product.product_bid],
        "order_bid": [unpaid.order_bid, paid.order_bid],
        "refund_bid": [refund.refund_bid],
        "clerk": role == "clerk",
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


# Every check schemathesis 4.32 runs by default, all of them on every response below (its
# default set: `checks=None`). Some act only in one phase: missing_required_header and
# unsupported_method on coverage cases, use_after_free and ensure_resource_availability
# on stateful chains; object_level_authorization needs identities from an [auth.wfc] file
# and passes without. max_response_time is off unless given a limit.
DEFAULT_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
}


def test_schemathesis_runs_all_these_checks_by_default():
    load_all_checks()
    config = schemathesis.Config().projects.default.checks_config_for(operation=None, phase=None)
    enabled = {
        check.__name__
        for check in CHECKS.get_all()
        if config.get_by_name(name=check.__name__).enabled
    }
    assert enabled == DEFAULT_CHECKS


def test_the_api_answers_as_its_schema_says(seeded, wsgi_app):
    """Every operation: first the seeded purchase path, then generated input (valid and
    not, with random and seeded rows in the path), under all the default checks: never a
    5xx, every answer documented (status, content type, headers, schema), valid input
    never refused as invalid, invalid input never accepted, authentication enforced."""
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    assert len(operations) == 20
    auth = {"Authorization": f"Token {seeded['token']}", "X-Api-Key": seeded["api_key"]}
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
        ("POST /api/entitlements/grant/", {}, {"user_bid": "u1", "product_bid": product,
                                               "reason": "x"}, 201),
        ("POST /api/entitlements/revoke/", {}, {"user_bid": "u1", "product_bid": product,
                                                "reason": "x"}, 200),
        ("POST /api/coupons/redeem/", {}, {"code": seeded["activation_code"][0]}, 201),
        ("POST /api/coupon-batches/", {}, {"name": "N", "discount_type": "percent",
         "value": "10", "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2036-01-01T00:00:00Z",
         "products": [], "usage": "shared", "code": "TENOFF", "total_limit": 5},
         201 if clerk else 403),
        ("PUT /api/products/{product_bid}/", {"product_bid": "platform-course-1"},
         {"name": "N", "price": "1.00", "currency": "cny", "active": True},
         201 if clerk else 403),
    ]  # fmt: skip
    for label, path, body, expected in happy:
        operation = operations[label]
        case = operation.Case(path_parameters=path, **({} if body is None else {"body": body}))
        response = case.call_and_validate(headers=auth)
        assert response.status_code == expected, (label, response.text)

    for label, operation in operations.items():  # anonymous, and with a stale token
        path = {p.name: seeded[p.name][0] for p in operation.path_parameters}
        for headers in ({}, {"Authorization": "Token 0123456789abcdef"}):
            response = operation.Case(path_parameters=path).call_and_validate(headers=headers)
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
            headers = dict(auth)
            if "/api/entitlements/" in case.path and "X-Api-Key" not in (case.headers or {}):
                # A negative case without the key the partner endpoints require: sent
                # without it, so the 401 is what it tests.
                del headers["X-Api-Key"]
            response = case.call_and_validate(headers=headers)
            answers[case.operation.label].add(response.status_code)

        fuzz()

    # The token works and the seeded rows were found: every read answered 200 at least once.
    # Coupon batches are staff's: a customer is refused them.
    staff_only = set() if clerk else {"GET /api/coupon-batches/{coupon_bid}/"}
    reads = [label for label in operations if label.startswith("GET")]
    assert all(200 in answers[label] for label in reads if label not in staff_only)
    assert all(answers[label] == {403} for label in staff_only)


# ---- schemathesis: a whole run, as `schemathesis run` does ----


@pytest.fixture
def wsgi_probes(monkeypatch):
    """Schemathesis 4.32.5 sends ignored_auth's probes through the WSGI transport with
    the run's socket settings (``max_redirects``...), which Werkzeug refuses; its own
    sessions drop them (transport/wsgi.py). Drop them for every call."""
    send = WSGITransport.send

    def without_socket_settings(self, case, *, session=None, **kwargs):
        for name in ("max_redirects", "verify", "cert", "proxies"):
            kwargs.pop(name, None)
        return send(self, case, session=session, **kwargs)

    monkeypatch.setattr(WSGITransport, "send", without_socket_settings)


def run_config(token: str, api_key: str, *, max_examples: int) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": 20261206,
            "workers": 1,
            "cache": {"enabled": False},  # no .schemathesis/ directory in the checkout
            "headers": {"Authorization": f"Token {token}", "X-Api-Key": api_key},
            "generation": {"max-examples": max_examples, "deterministic": True, "database": "none"},
            "phases": {
                "stateful": {"max-steps": 20},
                # Error feedback learns from 4xx bodies; its DRF parser reads the `errors`
                # of our error body as a field of the request, and then sends valid input
                # as if it were invalid. It changes what is generated, not what is checked.
                "fuzzing": {"error-feedback": {"enabled": False}},
            },
            # A body over the API's 16 KiB is refused unread with 413 (documented on
            # every operation with a body): a rejection too, which schemathesis's default
            # list leaves out.
            "checks": {
                "negative_data_rejection": {
                    "expected-statuses": [
                        *("400", "401", "403", "404", "405", "406", "409", "413"),
                        *("415", "422", "428", "429", "5xx"),
                    ]
                }
            },
        }
    )


@pytest.mark.django_db(transaction=True)  # the engine calls the app from its own threads
def test_a_schemathesis_run_passes_every_default_check(sandbox_channel, wsgi_probes):
    """The engine of `schemathesis run`, in process: the coverage phase (boundary values,
    missing and wrong-type fields, undocumented methods), fuzzing and the stateful phase
    (the schema's links), for a clerk with the seeded rows. Nothing fails and nothing
    errors, and every default check ran."""
    rows = seed("clerk")
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/",
        get_wsgi_application(),
        config=run_config(rows["token"], rows["api_key"], max_examples=8),
    )
    failures, errors, phases, checked, followed = [], [], {}, Counter(), Counter()
    for event in engine_for(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for node in event.recorder.cases.values():
                if node.transition is not None and node.is_transition_applied:
                    followed[node.transition.id.split("] ")[1].split(" ->")[0]] += 1
            for checks in event.recorder.checks.values():
                for check in checks:
                    checked[check.name] += 1
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.append(
                            f"{check.name}: {failure.operation}: {failure.title}\n"
                            f"{failure.message}\n{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(repr(getattr(event, "value", None) or event.exception))
        elif isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status
    assert not errors, errors
    assert not failures, "\n\n".join(failures[:5])
    assert phases["coverage"] == phases["fuzzing"] == phases["stateful"] == Status.SUCCESS, phases
    assert set(checked) == DEFAULT_CHECKS, set(checked) ^ DEFAULT_CHECKS
    # The stateful phase followed links of the schema (and links of its own inference).
    assert {"GetOrder", "CancelOrder", "GetProduct", "UpdateProduct", "OrderProduct"} <= set(
        followed
    ), followed


# ---- schemathesis: the state machine of the links ----


def test_the_links_name_operations_and_fields_of_the_answers():
    schema = the_schema()
    operations = {
        operation["operationId"]: (path, operation)
        for path, item in schema["paths"].items()
        for operation in item.values()
    }
    components = schema["components"]["schemas"]

    def fields(response):
        ref = response["content"]["application/json"]["schema"]["$ref"]
        return components[ref.rsplit("/", 1)[1]]["properties"]

    linked = set()
    for (source, status), kind in LINKS.items():
        _, operation = operations[source]
        response = operation["responses"][status]
        assert set(response["links"]) == set(FOLLOW[kind]), (source, status)
        for name, link in response["links"].items():
            target_path, target = operations[link["operationId"]]
            path_parameters = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
            assert set(link.get("parameters", {})) == path_parameters, (source, name)
            expressions = [*link.get("parameters", {}).values()]
            expressions += link.get("requestBody", {}).values()
            for expression in expressions:
                pointer = expression.removeprefix("$response.body#/").split("/")
                properties = fields(response)
                for step in pointer[:-1]:  # a nested serializer: follow its reference
                    nested = properties[step].get("allOf", [properties[step]])[0]["$ref"]
                    properties = components[nested.rsplit("/", 1)[1]]["properties"]
                assert pointer[-1] in properties, (source, name, expression)
            body = target.get("requestBody", {}).get("content", {}).get("application/json")
            if "requestBody" in link:
                body_fields = components[body["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]
                assert set(link["requestBody"]) <= set(body_fields), (source, name)
            linked.add(target_path)
    assert linked >= {"/api/orders/{order_bid}/", "/api/refunds/{refund_bid}/"}
    assert linked >= {"/api/products/{product_bid}/", "/api/orders/{order_bid}/pay/"}


def test_the_state_machine_follows_the_links(seeded, wsgi_app):
    """`schema.as_state_machine()`: chains of calls along the OpenAPI links (an order to
    its read, pay, sync, cancel and refund; a new product to its read, change and order),
    under all the default checks, at a fixed seed with bounded scenarios and steps."""
    config = {
        # The schema's links only: schemathesis also infers links of its own (from lists
        # to items...); the run above follows those.
        "phases": {"stateful": {"inference": {"algorithms": []}}},
        # Orders start from the seeded product on sale (or a new one) half of the time.
        "dictionaries": {"products": {"values": seeded["product_bid"][:1]}},
        "parameters": {"body.product": {"dictionary": "products", "probability": 0.5}},
    }
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/", wsgi_app, config=schemathesis.Config.from_dict(config)
    )
    auth = {"Authorization": f"Token {seeded['token']}", "X-Api-Key": seeded["api_key"]}
    followed = Counter()

    class Links(schema.as_state_machine()):
        def setup(self):
            # Each scenario starts from the seeded rows and no throttle history, so that
            # Hypothesis meets the same API whenever it replays a scenario.
            cache.clear()
            self.rows = transaction.atomic()
            self.rows.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self.rows.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            return {"headers": auth}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # As the recording machine does, naming the headers as the caller's (not
            # generated), so that ignored_auth probes without them and with a bad token.
            case.validate_response(
                response,
                additional_checks=additional_checks,
                headers=auth,
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

        def after_call(self, response, case):
            super().after_call(response, case)
            node = self.recorder.cases[case.id]
            if node.transition is not None and node.is_transition_applied:
                name = node.transition.id.split("] ")[1].split(" ->")[0]
                followed[name, response.status_code] += 1

    Links.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    statuses = defaultdict(set)
    for name, status in followed:
        statuses[name].add(status)
    # Chains were followed, not only started (which links, varies with what came back;
    # ensure_resource_availability fails a link to a resource just created that is not
    # there): an order read and acted on, and for the clerk a new product read.
    assert 200 in statuses["GetOrder"], followed
    assert {"PayOrder", "SyncOrder", "CancelOrder"} & set(statuses), followed
    if seeded["clerk"]:
        assert 200 in statuses["GetProduct"] and "OrderProduct" in statuses, followed
