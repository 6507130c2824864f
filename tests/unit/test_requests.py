"""Request plumbing with no AWS: idempotency fingerprints, cursors, callers, the error map."""

import base64
import json
import re

import pytest

from tests.support.http import gateway_event
from tollbooth.api.auth import Principal, principal_from
from tollbooth.api.errors import STATUS_BY_ERROR, status_for
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.views import decode_cursor, encode_cursor
from tollbooth.contracts.holds import HOLD_ID_PATTERN
from tollbooth.domain import errors, ids


def test_the_fingerprint_ignores_key_order_but_not_values() -> None:
    first = Idempotency.of("k", "consume", "a", {"feature": "x", "quantity": 1})
    same = Idempotency.of("k", "consume", "a", {"quantity": 1, "feature": "x"})
    other_value = Idempotency.of("k", "consume", "a", {"feature": "x", "quantity": 2})
    other_account = Idempotency.of("k", "consume", "b", {"feature": "x", "quantity": 1})
    other_operation = Idempotency.of("k", "grant", "a", {"feature": "x", "quantity": 1})
    assert first.fingerprint == same.fingerprint
    assert (
        len({first.fingerprint, other_value.fingerprint, other_account.fingerprint, other_operation.fingerprint}) == 4
    )


@pytest.mark.parametrize("key", [None, "", "k" * 256])
def test_the_key_must_be_1_to_255_characters(key: str | None) -> None:
    with pytest.raises(errors.IdempotencyKeyMissing):
        Idempotency.of(key, "consume", "a", {})
    assert Idempotency.of("k" * 255, "consume", "a", {}).key == "k" * 255


def test_keys_tollbooth_derives_itself_cannot_be_sent_by_a_client() -> None:
    with pytest.raises(errors.InvalidRequest, match="tollbooth:"):
        Idempotency.of("tollbooth:allowance:pro:2026-11-01", "consume", "a", {})
    assert Idempotency.of("tollbooth-ish", "consume", "a", {}).key == "tollbooth-ish"


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    bounds = {None: 42, 3: 7}
    assert decode_cursor(encode_cursor(bounds)) == bounds
    # A cursor from before slices (version 1) continues the account's own entries.
    assert decode_cursor(_cursor({"v": 1, "before": 42})) == {None: 42}
    bad_bounds = [{"v": 2, "before": {"a": 0}}, {"v": 2, "before": {"x": 3}}, {"v": 2, "before": [1]}]
    for garbage in ["", "zzz", "e30", encode_cursor(bounds)[:-3], "eyJ2IjogMSwgImJlZm9yZSI6ICIxIn0", "✓"] + [
        _cursor(data) for data in bad_bounds
    ]:
        with pytest.raises(errors.InvalidCursor):
            decode_cursor(garbage)


def _cursor(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def event_with(authorizer: dict | None) -> dict:
    return {"requestContext": {"authorizer": authorizer} if authorizer is not None else {}}


def test_callers_come_from_the_authorizer_context() -> None:
    service = principal_from(event_with({"iam": {"userArn": "arn:aws:iam::1:role/backend"}}), "sub")
    assert service == Principal("service", "arn:aws:iam::1:role/backend")
    user = principal_from(event_with({"jwt": {"claims": {"sub": "alice"}}}), "sub")
    assert (user.kind, user.account_id) == ("user", "alice")
    custom = principal_from(
        event_with({"jwt": {"claims": {"sub": "u-1", "custom:account": "team-9"}}}), "custom:account"
    )
    assert custom.account_id == "team-9"
    for anonymous in (None, {}, {"jwt": {"claims": {}}}):
        with pytest.raises(errors.Unauthenticated):
            principal_from(event_with(anonymous), "sub")


def test_a_user_acts_only_on_its_own_account_and_never_as_a_service() -> None:
    user = Principal("user", "alice", "alice")
    user.require_account("alice")
    with pytest.raises(errors.Forbidden):
        user.require_account("bob")
    with pytest.raises(errors.Forbidden):
        user.require_service()
    Principal("service", "backend").require_account("bob")


def all_subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in [direct, *all_subclasses(direct)]]


def test_every_domain_error_has_a_non_500_status() -> None:
    for error_class in all_subclasses(errors.TollboothError):
        assert (
            status_for(
                error_class("x")
                if error_class is not errors.InsufficientCredits
                else error_class("x", required=1, available=0)
            )
            < 500
            or issubclass(error_class, errors.StorageUnavailable)  # 503 with Retry-After
        ), error_class
    assert set(STATUS_BY_ERROR.values()) <= {400, 401, 402, 403, 404, 409, 422, 503}


def test_only_what_passes_on_its_own_says_retry() -> None:
    # A busy account and a failing store can succeed if sent again; nothing else can
    retryable = {error for error in STATUS_BY_ERROR if error.retryable}
    assert retryable == {errors.ConcurrentUpdate, errors.StorageUnavailable}
    # A 503 is reserved for what a retry fixes; a change too large for one transaction is not that
    assert {error for error, status in STATUS_BY_ERROR.items() if status == 503} <= retryable
    assert status_for(errors.ChangeTooLarge()) == 422 and not errors.ChangeTooLarge.retryable


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (errors.StorageUnavailable("the ledger store failed; retry the request"), "1"),
        (errors.ConcurrentUpdate("busy"), "1"),
        (errors.ChangeTooLarge(), None),
        (errors.InsufficientCredits("short", required=2000, available=1000), None),
    ],
)
def test_a_retryable_error_answers_with_retry_after(error: errors.TollboothError, retry_after: str | None) -> None:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    from tollbooth.api.errors import register_error_handlers

    app = APIGatewayHttpResolver()
    register_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise error

    event = gateway_event("GET", "/boom")
    response = app.resolve(event, None)  # type: ignore[arg-type]
    assert json.loads(response["body"])["error"]["code"] == error.code
    assert response["headers"].get("Retry-After") == retry_after


def test_the_hold_id_a_path_may_name_is_every_id_tollbooth_makes_and_nothing_else() -> None:
    made = [ids.hold_id(1_800_000_000_000, stream) for stream in (None, 0, 7, 63)]
    assert all(re.fullmatch(HOLD_ID_PATTERN, hold_id) for hold_id in made)  # a slice's hold ends in s<slice>
    for other in ["hold_x", made[0] + "s", made[0] + "s1234", made[1] + "0s1", "led_" + made[0][5:], made[0].upper()]:
        assert not re.fullmatch(HOLD_ID_PATTERN, other)
