"""The local stack behaves like API Gateway and Lambda where a developer would notice: a
crashed or hung function answers at once and its container is replaced, a malformed answer
is a 500, undeclared methods get a JSON 404, CORS preflight is answered, and the local
tooling routes need a service token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.http import gateway_event
from tollbooth_local import tokens
from tollbooth_local.containers import Containers, FunctionCrashed, FunctionTimedOut
from tollbooth_local.cors import Cors
from tollbooth_local.gateway import Gateway
from tollbooth_local.intrinsics import evaluate_conditions, select
from tollbooth_local.template import Route, Template

HANDLERS = """
import os, time

def ok(event, context):
    return {"statusCode": 200, "body": "ok:" + str(os.getpid())}

def crash(event, context):
    os._exit(3)

def hang(event, context):
    time.sleep(60)

def fail(event, context):
    raise RuntimeError("boom")
"""


def function(handler: str, timeout: int) -> str:
    return f"""
  {handler.capitalize()}:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code
      Handler: app.{handler}
      Timeout: {timeout}
"""


@pytest.fixture(scope="module")
def containers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("functions")
    (root / "code").mkdir()
    (root / "code" / "app.py").write_text(HANDLERS)
    body = "".join(function(name, 1 if name == "hang" else 10) for name in ("ok", "crash", "hang", "fail"))
    (root / "template.yaml").write_text("Resources:" + body)
    pool = Containers(Template(root / "template.yaml"), 1)
    yield pool
    pool.close()


def pid_of(result: dict[str, Any]) -> str:
    return str(result["body"]).split(":")[1]


def test_a_container_that_dies_answers_at_once_and_is_replaced(containers: Containers) -> None:
    before = pid_of(containers.invoke("Ok", {}))
    with pytest.raises(FunctionCrashed):
        containers.invoke("Crash", {})
    after = pid_of(containers.invoke("Ok", {}))
    assert after != before


def test_a_function_past_its_timeout_is_killed_and_its_container_replaced(containers: Containers) -> None:
    before = pid_of(containers.invoke("Ok", {}))
    with pytest.raises(FunctionTimedOut):
        containers.invoke("Hang", {})  # Timeout: 1
    assert pid_of(containers.invoke("Ok", {})) != before


def test_a_function_that_raises_keeps_its_container(containers: Containers) -> None:
    before = pid_of(containers.invoke("Ok", {}))
    with pytest.raises(FunctionCrashed):
        containers.invoke("Fail", {})
    assert pid_of(containers.invoke("Ok", {})) == before


ROUTES = [
    Route("GET", "/v1/catalog", "CatalogFunction", "PublicApi", "none"),
    Route("POST", "/v1/accounts/{account_id}/consume", "ConsumeFunction", "PublicApi", "jwt"),
]
CORS = Cors(("https://app.example",), ("GET", "POST", "OPTIONS"), ("authorization",), ("retry-after",), 600)


def gateway(tmp_path: Path, answer: Any, schedules: list[str] | None = None, cors: Cors | None = CORS) -> Gateway:
    def invoke(function_id: str, event: dict[str, Any]) -> Any:
        if isinstance(answer, Exception):
            raise answer
        return answer

    return Gateway(ROUTES, invoke, tmp_path, None if schedules is None else schedules.append, cors)


@pytest.mark.parametrize(
    "answer",
    [
        FunctionCrashed("CatalogFunction"),
        FunctionTimedOut("CatalogFunction"),
        {"statusCode": "two hundred"},
        {"statusCode": 999},
        {"statusCode": 200, "body": 12},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
    ],
)
def test_a_failed_integration_is_the_500_an_http_api_answers(tmp_path: Path, answer: Any) -> None:
    status, headers, body = gateway(tmp_path, answer).handle("GET", "/v1/catalog", {}, b"", "127.0.0.1")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH", "TRACE", "OPTIONS", "BREW"])
def test_an_undeclared_method_is_a_json_404(tmp_path: Path, method: str) -> None:
    status, _, body = gateway(tmp_path, {}).handle(method, "/v1/catalog", {}, b"", "127.0.0.1")
    assert (status, json.loads(body)["error"]["code"]) == (404, "not_found")


def test_preflight_is_answered_for_an_allowed_origin_only(tmp_path: Path) -> None:
    api = gateway(tmp_path, {})
    asked = {"origin": "https://app.example", "access-control-request-method": "POST"}
    status, headers, _ = api.handle("OPTIONS", "/v1/accounts/a/consume", asked, b"", "127.0.0.1")
    assert status == 204
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-methods"] == "GET,POST,OPTIONS"
    assert headers["access-control-max-age"] == "600"
    other = {"origin": "https://evil.example", "access-control-request-method": "POST"}
    status, headers, _ = api.handle("OPTIONS", "/v1/accounts/a/consume", other, b"", "127.0.0.1")
    assert status == 204 and not any(key.startswith("access-control-") for key in headers)


def test_an_answer_carries_cors_headers_for_an_allowed_origin(tmp_path: Path) -> None:
    answer = {"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*"}, "body": "{}"}
    api = gateway(tmp_path, answer)
    _, headers, _ = api.handle("GET", "/v1/catalog", {"origin": "https://app.example"}, b"", "127.0.0.1")
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-expose-headers"] == "retry-after"
    _, headers, _ = api.handle("GET", "/v1/catalog", {"origin": "https://evil.example"}, b"", "127.0.0.1")
    assert "access-control-allow-origin" not in headers  # API Gateway's CORS replaces the function's


def test_without_cors_a_preflight_is_a_404(tmp_path: Path) -> None:
    asked = {"origin": "https://app.example", "access-control-request-method": "POST"}
    status, _, _ = gateway(tmp_path, {}, cors=None).handle("OPTIONS", "/v1/catalog", asked, b"", "127.0.0.1")
    assert status == 404


def test_local_tooling_needs_a_service_token(tmp_path: Path) -> None:
    ran: list[str] = []
    api = gateway(tmp_path, {}, schedules=ran)
    path = "/_local/schedules/ExpiryFunction"
    assert api.handle("POST", path, {}, b"", "127.0.0.1")[0] == 401
    user = {"authorization": f"Bearer {tokens.mint(tmp_path, account='alice')}"}
    assert api.handle("POST", path, user, b"", "127.0.0.1")[0] == 403
    assert ran == []
    service = {"authorization": f"Bearer {tokens.mint(tmp_path, role='service')}"}
    assert api.handle("POST", path, service, b"", "127.0.0.1")[0] == 200
    assert ran == ["ExpiryFunction"]
    assert api.handle("GET", "/_local/anything", service, b"", "127.0.0.1")[0] == 404


def test_the_templates_cors_is_off_by_default_and_follows_the_parameter() -> None:
    template = Template()
    configuration = template.resources["PublicApi"]["Properties"]["CorsConfiguration"]
    for origins, expected in [("", None), ("*", ("*",)), ("https://a.example,https://b.example", None)]:
        parameters = {**template.parameter_defaults(), "CorsAllowedOrigins": origins}
        conditions = evaluate_conditions(template.document["Conditions"], parameters)
        cors = Cors.from_configuration(select(configuration, conditions), parameters)
        if not origins:
            assert cors is None
        else:
            assert cors is not None and cors.allow_origins == (expected or tuple(origins.split(",")))
            assert "idempotency-key" in cors.allow_headers


def test_a_lambda_event_still_reaches_the_function(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    api = Gateway(ROUTES, lambda _, event: seen.append(event) or {"statusCode": 200, "body": "{}"}, tmp_path)
    status, _, _ = api.handle("GET", "/v1/catalog?version=1", {}, b"", "127.0.0.1")
    assert status == 200 and seen[0]["rawQueryString"] == "version=1"
    assert gateway_event("GET", "/v1/catalog")["routeKey"] == seen[0]["routeKey"]
