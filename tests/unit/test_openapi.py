"""The OpenAPI document describes the API exactly, and the committed copy is the generated one."""

from __future__ import annotations

import json

import pytest

from tests.support.http import gateway_event
from tollbooth.api.catalog_routes import openapi_document
from tollbooth_local.template import REPO_ROOT, Template

COMMITTED = REPO_ROOT / "docs" / "openapi.json"
DOCUMENT = json.loads(openapi_document())
OPERATIONS = [(path, method, op) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()]


def test_the_committed_document_is_the_one_the_code_generates() -> None:
    assert json.loads(COMMITTED.read_text()) == DOCUMENT, "docs/openapi.json is stale: run `make openapi`"


def test_every_route_of_the_template_is_described_and_nothing_else() -> None:
    routes = {(route.path, route.method.lower()) for route in Template().routes()}
    described = {(path, method) for path, method, _ in OPERATIONS}
    assert described == routes - {("/v1/openapi.json", "get"), ("/docs", "get")}


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_each_operation_is_named_tagged_and_answers_in_one_error_shape(path: str, method: str, op: dict) -> None:
    assert op["operationId"] and op["operationId"][0].islower() and "_" not in op["operationId"]
    assert op["tags"]
    for status, response in op["responses"].items():
        schema = response["content"]["application/json"]["schema"]
        if int(status) >= 400:
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (status, schema)
        else:
            assert "$ref" in schema, f"{status} has no response model"


# Every mutation but an allowance (its account, plan and period are its key); a quote changes nothing.
KEYED = [o for o in OPERATIONS if o[1] == "post" and not o[0].endswith(("/allowances", "/quotes"))]


@pytest.mark.parametrize(("path", "method", "op"), KEYED)
def test_every_keyed_mutation_requires_an_idempotency_key_and_says_when_it_replays(
    path: str, method: str, op: dict
) -> None:
    (header,) = [p for p in op.get("parameters", []) if p["in"] == "header"]
    assert header["name"].lower() == "idempotency-key" and header["required"]
    assert header["schema"]["minLength"] == 1 and header["schema"]["maxLength"] == 255
    created = op["responses"]["201" if "201" in op["responses"] else "200"]
    assert "Idempotent-Replayed" in created["headers"]


def test_users_authenticate_with_a_bearer_token_and_services_with_sigv4() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer" and schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    for path, _, op in OPERATIONS:
        security = [next(iter(s)) for s in op.get("security", [])]
        if path == "/v1/catalog":
            assert security == []
        elif any(word in path for word in ("purchases", "grants", "allowances")):
            assert security[0] == "sigv4"
        else:
            assert set(security) == {"bearer", "sigv4"}


def test_the_error_object_documents_its_extras_and_no_framework_shape_is_left() -> None:
    body = DOCUMENT["components"]["schemas"]["ErrorBody"]["properties"]
    assert {"code", "message", "required", "balance", "missing", "allowed"} <= set(body)
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


def test_the_catalog_function_serves_the_document_it_describes() -> None:
    import os

    from tollbooth_local.functions import LambdaContext, load_function

    os.environ.setdefault("TABLE_NAME", "unused")
    handler = load_function(Template().functions()["CatalogFunction"])
    event = gateway_event("GET", "/v1/openapi.json")
    served = handler(event, LambdaContext("CatalogFunction", 10))
    assert served["statusCode"] == 200 and json.loads(served["body"]) == DOCUMENT
