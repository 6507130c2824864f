"""Properties of the whole pricing path: a quote (through the real quote handler) equals the
debit the service builds for the same request, and no float enters anywhere on the way."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.support.engines import event
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.service import LedgerService
from tollbooth.contracts.http import ConsumeRequest, GrantRequest
from tollbooth.domain.catalog import load_history
from tollbooth.domain.clock import now_ms
from tollbooth.domain.ledger import Account, IdempotencyRecord, Lot, Mutation
from tollbooth.domain.money import format_credits
from tollbooth.settings import get_settings
from tollbooth_local.functions import LambdaContext, load_function
from tollbooth_local.template import Template

CATALOG = load_history().in_force(now_ms())
PLENTY = 10**15


class FundedAccounts:
    """Every account holds plenty of unrestricted credits that unlock everything; writes are kept, not stored."""

    max_transaction_items = 100

    def __init__(self) -> None:
        self.applied: list[Mutation] = []

    def load_account(self, account_id: str) -> Account:
        lot = Lot("lot", "adjustment", PLENTY, PLENTY, 0, unlocks=tuple(CATALOG.features))
        return Account(account_id, version=1, balance=PLENTY, granted=PLENTY, lots=(lot,))

    def apply(self, mutation: Mutation, now: int) -> None:
        self.applied.append(mutation)

    def find_idempotency_record(self, account_id: str, key: str) -> IdempotencyRecord | None:
        return None


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    feature_id = draw(st.sampled_from(sorted(CATALOG.features)))
    feature = CATALOG.features[feature_id]
    dimensions = {
        name: draw(st.sampled_from(sorted(dimension.values)))
        for name, dimension in feature.dimensions.items()
        if draw(st.booleans())
    }
    quantity = draw(st.integers(min_value=1, max_value=feature.max_quantity))
    return {"feature": feature_id, "quantity": quantity, "dimensions": dimensions}


@pytest.fixture(scope="module")
def quote_handler():  # type: ignore[no-untyped-def]
    # The environment template.yaml gives the function; a quote reads no table.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TABLE_NAME", "unused-by-quotes")
        get_settings.cache_clear()
        spec = Template().functions()["CatalogFunction"]
        handler = load_function(spec)
        yield lambda body: handler({**event("quote.json"), "body": json.dumps(body)}, LambdaContext(spec.logical_id, 3))
    get_settings.cache_clear()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(requests())
def test_a_quote_equals_the_charge(quote_handler, request: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    # Given a request, When it is quoted through the quote handler and consumed through the service
    quoted = json.loads(quote_handler(request)["body"])
    store = FundedAccounts()
    service = LedgerService(store, load_history())  # type: ignore[arg-type]
    parsed = ConsumeRequest.model_validate(request)
    idem = Idempotency.of("k", "consume", "acct", parsed.model_dump(mode="json"))
    outcome = service.consume("acct", parsed.feature, parsed.quantity, parsed.dimensions, idem)
    # Then the debit written is exactly the quoted credits, at the same catalog version
    (mutation,) = store.applied
    assert format_credits(-mutation.entry.amount) == quoted["credits"] == outcome.body["charged"]
    assert sum(draw.amount for draw in mutation.draws) == -mutation.entry.amount
    assert outcome.body["catalog_version"] == quoted["catalog_version"]


def floats_in(value: object) -> list[object]:
    """Every float anywhere inside a value: dataclasses, dicts, sequences, JSON."""
    if isinstance(value, float):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return floats_in([getattr(value, field.name) for field in dataclasses.fields(value)])
    if isinstance(value, dict):
        return floats_in(list(value.keys()) + list(value.values()))
    if isinstance(value, list | tuple | set | frozenset):
        return [found for item in value for found in floats_in(item)]
    assert isinstance(value, str | int | Fraction | None), type(value)
    return []


@settings(max_examples=60, deadline=None)
@given(requests())
def test_no_float_enters_the_debit_path(request: dict[str, Any]) -> None:
    store = FundedAccounts()
    service = LedgerService(store, load_history())  # type: ignore[arg-type]
    parsed = ConsumeRequest.model_validate(request)
    idem = Idempotency.of("k", "consume", "acct", parsed.model_dump(mode="json"))
    outcome = service.consume("acct", parsed.feature, parsed.quantity, parsed.dimensions, idem)
    # The mutation written (entry, draws, stored response) holds ints and strings only
    assert floats_in(store.applied) == []
    assert floats_in(json.loads(json.dumps(outcome.body))) == []


@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["quantity", "credits"]))
def test_a_float_in_a_request_is_refused_never_rounded(number: float, field: str) -> None:
    # A JSON number with a fraction or exponent arrives as a float: it must be refused, whatever its value
    if field == "quantity":
        with pytest.raises(ValidationError):
            ConsumeRequest.model_validate_json(json.dumps({"feature": "text_generation", "quantity": number}))
    else:
        with pytest.raises(ValidationError):
            GrantRequest.model_validate_json(json.dumps({"credits": number, "source": "promotional", "reason": "r"}))
