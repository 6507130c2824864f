"""The served OpenAPI document, fuzzed: no request may make the stack answer 5xx, and every
answer is one the document describes.

A bounded schemathesis run (tests/support/schema_fuzz.py) per engine, once as a service
and once as an account's user. Server errors, leaked internals and conformance problems
(undocumented statuses, responses off their schema, invalid data accepted) all fail it.

Below it, hostile requests schemathesis does not make, each answered with a 4xx in the one
error shape ``{"error": {"code", "message"}}`` (or, for ``APPLICATION/JSON``, accepted).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis

from tests.support.http import Api, Reply, fresh_account, fund
from tests.support.schema_fuzz import LEAK_MARKERS, Caller, Limits, SchemaFuzzer
from tollbooth_local.template import Template

# Per engine: about 45 s as a service (8 operations) and 25 s as a user (5) on moto.
LIMITS = Limits(max_examples=30, max_coverage_cases=150, time_budget=90.0)
FUNDS = "1000000"


def operations_open_to(kinds: set[str]) -> set[str]:
    """Operation labels ("GET /v1/catalog") whose route template.yaml opens to these callers."""
    return {f"{route.method} {route.path}" for route in Template().routes() if route.auth in kinds}


@pytest.mark.slow
@pytest.mark.parametrize("who", ["service", "user"])
def test_no_request_from_the_served_schema_gets_a_server_error(
    api: Api, who: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the document the stack serves, and a funded account to aim most requests at
    schema = schemathesis.openapi.from_url(f"{api.base_url}/v1/openapi.json", timeout=60)
    catalog = api.call("GET", "/v1/catalog").body
    account = fresh_account(f"fuzz-{who}")
    fund(api, account, FUNDS)
    if who == "service":
        # A service may name any account: a quarter of the cases keep a generated one.
        caller = Caller("service", api.service(), account, pin_share=0.75)
        operations = operations_open_to({"iam", "none"})
    else:
        # A user is pinned to its own account: any other one is refused with a 403.
        caller = Caller("user", api.user(account), account, pin_share=1.0)
        operations = operations_open_to({"jwt", "none"})
    # When schemathesis' coverage and generated cases are sent
    report = SchemaFuzzer(schema, api.base_url, caller, catalog, operations=operations, limits=LIMITS).run()
    with capsys.disabled():
        print(f"\n{report.summary_text()}")
    # Then none was answered with a 5xx, or leaked AWS error text or a traceback
    assert report.sent > 0, report.summary_text()
    assert not report.failures, report.failure_text()
    # And the document says exactly what the API does: no undocumented status, no response off its schema
    assert not report.conformance, report.summary_text()


# -- hostile requests ---------------------------------------------------------------------------

ROUTES = ["quotes", "purchases", "grants", "allowances", "consume"]
VALID_GRANT = {"credits": "5", "source": "promotional", "reason": "hostile test"}
VALID_CONSUME = {"feature": "image_generation", "quantity": 1}


def path_to(route: str) -> str:
    """A POST route, on a fresh account: no test's refusal may come from another's writes."""
    return "/v1/quotes" if route == "quotes" else f"/v1/accounts/{fresh_account('hostile')}/{route}"


def valid_body(route: str) -> dict[str, Any]:
    """A body the route accepts, so that the one thing wrong with a request is the thing under test."""
    if route == "purchases":
        return {"package_id": "standard", "payment_reference": f"pi_{uuid.uuid4().hex}"}
    if route == "grants":
        return dict(VALID_GRANT)
    if route == "allowances":
        return {"plan_id": "pro_monthly", "period_start": datetime.now(UTC).isoformat()}
    return dict(VALID_CONSUME)


def post(api: Api, path: str, *, body: Any = None, raw: bytes | None = None, content_type: str | None = None) -> Reply:
    headers = {"content-type": content_type} if content_type else None
    return api.call(
        "POST", path, token=api.service(), body=body, raw=raw, key=f"hostile-{uuid.uuid4()}", headers=headers
    )


def assert_refused(reply: Reply, statuses: tuple[int, ...]) -> None:
    assert reply.status in statuses, (reply.status, reply.body)
    assert isinstance(reply.body, dict) and set(reply.body) == {"error"}, reply.body
    error = reply.body["error"]
    assert isinstance(error, dict), reply.body
    assert isinstance(error.get("code"), str) and error["code"], reply.body
    assert isinstance(error.get("message"), str) and error["message"], reply.body
    assert not [marker for marker in LEAK_MARKERS if marker in json.dumps(reply.body)], reply.body


def nested(depth: int) -> bytes:
    return ('{"feature": ' + "[" * depth + "]" * depth + ', "quantity": 1}').encode()


@pytest.mark.parametrize("route", ROUTES)
def test_a_body_that_is_not_utf8_is_malformed_json(api: Api, route: str) -> None:
    assert_refused(post(api, path_to(route), raw=b"\xff\xfe{"), (400,))


@pytest.mark.parametrize("route", ROUTES)
def test_json_nested_ten_thousand_deep_is_refused(api: Api, route: str) -> None:
    assert_refused(post(api, path_to(route), raw=nested(10_000)), (400, 422))


@pytest.mark.parametrize("route", ROUTES)
def test_a_json_array_body_is_refused(api: Api, route: str) -> None:
    assert_refused(post(api, path_to(route), body=[valid_body(route)]), (400, 422))


@pytest.mark.parametrize("route", ROUTES)
def test_a_content_type_that_only_starts_like_json_is_refused(api: Api, route: str) -> None:
    reply = post(api, path_to(route), body=valid_body(route), content_type="application/jsonx")
    assert_refused(reply, (400,))


@pytest.mark.parametrize("content_type", ["APPLICATION/JSON", "Application/Json; charset=UTF-8"])
def test_a_json_content_type_is_matched_case_insensitively(api: Api, content_type: str) -> None:
    reply = post(api, path_to("grants"), body=valid_body("grants"), content_type=content_type)
    assert reply.status == 201, (reply.status, reply.body)


def test_a_quantity_of_five_thousand_digits_is_refused(api: Api) -> None:
    raw = b'{"feature": "image_generation", "quantity": ' + b"9" * 5000 + b"}"
    assert_refused(post(api, path_to("consume"), raw=raw), (400, 422))


def test_duplicate_keys_in_a_body_are_refused(api: Api) -> None:
    raw = b'{"feature": "image_generation", "feature": "text_generation", "quantity": 1}'
    assert_refused(post(api, path_to("consume"), raw=raw), (400, 422))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"credits": "5\n"}, id="credits-with-a-newline"),
        pytest.param({"expires_at": 4_102_444_800}, id="expires_at-unix-integer"),
        pytest.param({"expires_at": "9999-12-31T23:59:59-01:00"}, id="expires_at-past-year-9999-in-utc"),
        pytest.param({"expires_at": "0001-01-01T00:00:00+01:00"}, id="expires_at-before-year-1-in-utc"),
        pytest.param({"licences": ["PERSONAL"]}, id="licence-in-upper-case"),
    ],
)
def test_a_grant_with_an_invalid_field_is_refused(api: Api, change: dict[str, Any]) -> None:
    assert_refused(post(api, path_to("grants"), body={**VALID_GRANT, **change}), (400, 422))


@pytest.mark.parametrize("period_start", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_an_allowance_period_start_out_of_range_is_refused(api: Api, period_start: str) -> None:
    body = {"plan_id": "pro_monthly", "period_start": period_start}
    assert_refused(post(api, path_to("allowances"), body=body), (400, 422))


@pytest.mark.parametrize("reference", ["pi_X ", " pi_X", "pi_X\u200b"], ids=["trailing-space", "leading-space", "zwsp"])
def test_a_payment_reference_with_invisible_edges_is_unprocessable(api: Api, reference: str) -> None:
    body = {"package_id": "standard", "payment_reference": reference}
    assert_refused(post(api, path_to("purchases"), body=body), (422,))
