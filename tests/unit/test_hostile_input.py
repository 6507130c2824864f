"""Hostile input at the edges, with no AWS: every bad value is refused by validation with a
reason, before it can reach arithmetic that would raise something nobody catches."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from tollbooth.adapters.sqs import reasons_attribute
from tollbooth.api.auth import Principal, role_of
from tollbooth.api.body import BodyRefused, normalize_body, strict_json_object
from tollbooth.contracts.common import Instant, is_account_id
from tollbooth.contracts.http import AllowanceRequest, GrantRequest, PurchaseRequest
from tollbooth.domain import clock
from tollbooth.domain.errors import Forbidden
from tollbooth.domain.money import parse_credits
from tollbooth.domain.plans import is_plan_period

INSTANT = TypeAdapter(Instant)
DAY = 86_400_000


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+01:00",  # moving it to UTC overflows
        "9999-12-31T23:59:59-01:00",  # likewise, the other way
        "1999-12-31T23:59:59.999Z",
        "2100-01-01T00:00:00Z",
        "2027-01-31T00:00:00",  # no zone
        "1800000000",  # a Unix time as a string
        "tomorrow",
    ],
)
def test_an_instant_outside_the_years_2000_to_2099_or_not_iso_8601_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        INSTANT.validate_json(json.dumps(text))


@pytest.mark.parametrize("number", [1_800_000_000, 1_800_000_000_000, 0])
def test_a_unix_number_is_not_an_instant(number: int) -> None:
    with pytest.raises(ValidationError, match="ISO-8601"):
        INSTANT.validate_python(number)


def test_an_instant_at_the_edges_of_the_range_is_kept_as_sent() -> None:
    first = INSTANT.validate_json('"2000-01-01T01:00:00+01:00"')
    assert first.utcoffset() == timedelta(hours=1)  # as sent: an earlier request's fingerprint is unchanged
    assert clock.from_datetime(first) == clock.from_datetime(datetime(2000, 1, 1, tzinfo=UTC))
    last = INSTANT.validate_json('"2099-12-31T23:59:59.999Z"')
    assert clock.to_iso(clock.from_datetime(last)) == "2099-12-31T23:59:59.999Z"


def test_converting_an_instant_never_overflows_it_refuses() -> None:
    far = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1)))
    with pytest.raises(ValueError, match="out of range"):
        clock.from_datetime(far)


@pytest.mark.parametrize("text", ["5\n", " 5", "5 ", "+5", "5.", ".5", "05", "1e3", "\u0665"])
def test_credits_are_a_plain_decimal_and_nothing_around_it(text: str) -> None:
    with pytest.raises(ValueError):
        parse_credits(text)
    assert parse_credits("5.25") == 5250


@pytest.mark.parametrize("account_id", ["alice\n", "", "a" * 129, "al ice", "ålice"])
def test_an_account_id_is_matched_whole(account_id: str) -> None:
    assert not is_account_id(account_id)
    assert is_account_id("org:alice@example.com")


# -- bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"feature": "a", "feature": "b", "quantity": 1}', "appears twice"),
        ('{"dimensions": {"a": "x", "a": "y"}}', "appears twice"),
        ("[" * 10_000 + "]" * 10_000, "nested"),
        ('{"a":' * 100 + "1" + "}" * 100, "nested"),
        ('{"quantity": ' + "9" * 5_000 + "}", "more than"),
        ('{"quantity": ' + "9" * 41 + "}", "more than"),
        ('{"quantity": NaN}', "NaN"),
        ('{"quantity": Infinity}', "Infinity"),
        ('{"quantity": 1', "Expecting"),
    ],
)
def test_a_body_that_json_would_read_leniently_is_malformed(text: str, why: str) -> None:
    with pytest.raises(json.JSONDecodeError, match=why):
        strict_json_object(text)


@pytest.mark.parametrize("text", ["[]", '[{"feature": "x"}]', '"text"', "7", "null"])
def test_json_that_is_not_an_object_is_a_shape_error_not_a_guess(text: str) -> None:
    with pytest.raises(RequestValidationError):
        strict_json_object(text)


def test_an_ordinary_body_reads_as_usual() -> None:
    assert strict_json_object('{"quantity": 5, "dimensions": {"resolution": "hd"}, "x": 1.5}') == {
        "quantity": 5,
        "dimensions": {"resolution": "hd"},
        "x": 1.5,
    }


def request_event(body: bytes | str, content_type: str | None = "application/json") -> dict:
    headers = {} if content_type is None else {"content-type": content_type}
    if isinstance(body, bytes):
        return {"headers": headers, "body": base64.b64encode(body).decode(), "isBase64Encoded": True}
    return {"headers": headers, "body": body, "isBase64Encoded": False}


@pytest.mark.parametrize("raw", [b"\xff\xfe{", b'{"feature": "caf\xe9"}', b"\xc3"])
def test_a_body_that_is_not_utf_8_is_refused(raw: bytes) -> None:
    with pytest.raises(BodyRefused) as refused:
        normalize_body(request_event(raw))
    assert refused.value.code == "malformed_body"


@pytest.mark.parametrize("content_type", ["application/jsonx", "text/plain", "application/x-www-form-urlencoded"])
def test_only_json_is_read(content_type: str) -> None:
    with pytest.raises(BodyRefused) as refused:
        normalize_body(request_event("{}", content_type))
    assert refused.value.code == "unsupported_content_type"


@pytest.mark.parametrize("content_type", ["APPLICATION/JSON", "Application/Json; charset=UTF-8", None])
def test_the_json_media_type_is_matched_without_regard_to_case(content_type: str | None) -> None:
    event = request_event(b'{"a": 1}', content_type)
    normalize_body(event)
    assert event["body"] == '{"a": 1}' and not event["isBase64Encoded"]
    assert event["headers"].get("content-type", "application/json") == "application/json"


# -- requests ---------------------------------------------------------------------


GRANT = {"credits": "5", "source": "bonus", "reason": "welcome"}


@pytest.mark.parametrize(
    "change",
    [
        {"licences": ["PERSONAL"]},
        {"features": ["Text_Generation"]},
        {"expires_at": "9999-12-31T23:59:59-01:00"},
        {"expires_at": 1_900_000_000},
        {"credits": "5\n"},
    ],
)
def test_a_grant_refuses_what_the_ledger_could_not_hold(change: dict) -> None:
    with pytest.raises(ValidationError):
        GrantRequest.model_validate_json(json.dumps({**GRANT, **change}))


@pytest.mark.parametrize("field", ["period_start", "period_end"])
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "10000-01-01T00:00:00Z", 1_800_000_000])
def test_an_allowance_period_must_be_an_instant_in_range(field: str, value: object) -> None:
    body = {"plan_id": "pro_monthly", "period_start": "2027-01-01T00:00:00Z", field: value}
    with pytest.raises(ValidationError):
        AllowanceRequest.model_validate_json(json.dumps(body))


@pytest.mark.parametrize("reference", ["pi_X ", " pi_X", "pi_X\u200b", "pi_X\n", "pi X", "", "p" * 256, "pi_'X'"])
def test_a_payment_reference_has_one_spelling(reference: str) -> None:
    with pytest.raises(ValidationError):
        PurchaseRequest.model_validate_json(json.dumps({"package_id": "starter", "payment_reference": reference}))


@pytest.mark.parametrize(
    "reference", ["pi_3NvB1x2eZvKYlo2C", "GPA.3372-4161-5467-72915", "1000000123456789", "in_Ab:7/x#1"]
)
def test_real_payment_references_are_accepted_case_intact(reference: str) -> None:
    body = {"package_id": "starter", "payment_reference": reference}
    assert PurchaseRequest.model_validate_json(json.dumps(body)).payment_reference == reference


# -- who may create credits ------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "role"),
    [
        ("arn:aws:sts::123456789012:assumed-role/checkout-backend/session-7", "checkout-backend"),
        ("arn:aws:iam::123456789012:role/service-role/checkout-backend", "checkout-backend"),
        ("arn:aws:iam::123456789012:user/alice", None),
        ("arn:aws:sts::123456789012:federated-user/bob", None),
        ("AROALOCAL", None),
    ],
)
def test_the_role_is_read_from_the_callers_arn(arn: str, role: str | None) -> None:
    assert role_of(arn) == role


def test_only_the_named_roles_create_credits() -> None:
    backend = Principal("service", "arn:aws:sts::1:assumed-role/checkout-backend/s")
    backend.require_credit_issuer(("support-tools", "checkout-backend"))
    with pytest.raises(Forbidden, match="CreditIssuerRoles"):
        backend.require_credit_issuer(("support-tools",))
    with pytest.raises(Forbidden):
        backend.require_credit_issuer(())
    with pytest.raises(Forbidden):
        Principal("service", "arn:aws:iam::1:user/checkout-backend").require_credit_issuer(("checkout-backend",))


def test_the_caller_is_carried_to_the_use_case() -> None:
    context = Principal("service", "arn:aws:sts::1:assumed-role/r/s").context("req-1")
    assert context.caller.record() == {"kind": "service", "id": "arn:aws:sts::1:assumed-role/r/s"}
    assert context.request_id == "req-1"


# -- billing periods ------------------------------------------------------------------


def at(text: str) -> int:
    return clock.from_datetime(datetime.fromisoformat(text))


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        ("2027-01-01T00:00:00+00:00", "2027-02-01T00:00:00+00:00", 1),
        ("2027-01-31T00:00:00+00:00", "2027-02-28T00:00:00+00:00", 1),  # anchored on the 31st
        ("2027-02-28T00:00:00+00:00", "2027-03-31T00:00:00+00:00", 1),  # and clamped back
        ("2028-02-29T00:00:00+00:00", "2028-03-31T00:00:00+00:00", 1),
        ("2027-04-30T09:30:00+00:00", "2027-05-31T09:30:00+00:00", 1),
        ("2027-01-15T00:00:00+00:00", "2028-01-15T00:00:00+00:00", 12),
        ("2031-02-28T00:00:00+00:00", "2032-02-29T00:00:00+00:00", 12),  # anchored on Feb 29
    ],
)
def test_a_period_is_the_plans_length_allowing_for_a_clamped_calendar(start: str, end: str, months: int) -> None:
    assert is_plan_period(at(start), at(end), months)


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        ("2027-01-01T00:00:00+00:00", "2027-01-01T00:00:02+00:00", 1),  # two seconds
        ("2000-01-01T00:00:00+00:00", "2099-01-01T00:00:00+00:00", 1),  # a century
        ("2027-01-01T00:00:00+00:00", "2027-01-31T00:00:00+00:00", 1),  # a day short
        ("2027-01-01T00:00:00+00:00", "2027-02-05T00:00:00+00:00", 1),  # four days long
        ("2027-01-01T00:00:00+00:00", "2027-02-01T12:00:00+00:00", 1),  # half a day long
        ("2027-01-01T00:00:00+00:00", "2027-02-01T00:00:00+00:00", 12),
        ("2027-01-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00", 1),
    ],
)
def test_any_other_period_is_refused(start: str, end: str, months: int) -> None:
    assert not is_plan_period(at(start), at(end), months)


# -- dead letters -------------------------------------------------------------------


def test_the_reasons_attribute_stays_valid_json_within_its_limit() -> None:
    reasons = [f"record {n}: " + "x" * 900 for n in range(40)]
    text = reasons_attribute(reasons)
    kept = json.loads(text)
    assert len(text) <= 4096 and 0 < len(kept) < 40
    assert all(len(reason) <= 500 for reason in kept) and kept[0].startswith("record 0: ")
    assert json.loads(reasons_attribute(["short"])) == ["short"]
