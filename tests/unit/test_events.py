"""The published events' contract: the committed JSON Schemas are what the models produce,
docs/events.md documents every event and field, and every event the code builds is valid
against its model and its schema (under draft 2020-12, and draft 4 as EventBridge's schema
registry reads it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation
from pydantic import ValidationError

from tests.support.ledger import usage
from tollbooth.contracts.usage import UsageRecord
from tollbooth.domain import clock
from tollbooth.domain.catalog import load_history
from tollbooth.domain.events import EVENT_MODELS, event_schema, lot_event, schema_files
from tollbooth.domain.expiry import warn, write_off
from tollbooth.domain.ledger import Account, Lot
from tollbooth.domain.pricing import price
from tollbooth.domain.usage_charges import usage_mutation

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "docs" / "events"
DOC = ROOT / "docs" / "events.md"
REGENERATE = "regenerate them from the repository root: .venv/bin/python -m tollbooth.domain.events"

DAY = 86_400_000
T = 1_827_000_000_000  # 2027-11-23T20:00:00Z, a fixed "now" in epoch ms
PAID = Lot(
    "lot_paid", "purchase", 1_000_000, 700_000, T - 300 * DAY, T, price_minor=999, currency="USD", package_id="starter"
)
FREE = Lot("lot_free", "allowance", 5_000, 2_500, T - 30 * DAY, T, plan_id="pro")


def account(*lots: Lot, seq: int = 7) -> Account:
    balance = sum(lot.remaining for lot in lots)
    return Account("alice", version=3, balance=balance, granted=balance, lots=lots, seq=seq)


def valid(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` checked against its model (as built, and as a consumer parses the JSON) and
    its schema under both drafts; returned for further checks."""
    model = EVENT_MODELS[event["type"]]
    assert model.model_validate(event).model_dump(mode="json") == event
    assert model.model_validate_json(json.dumps(event)).model_dump(mode="json") == event
    schema = event_schema(event["type"])
    Draft202012Validator(schema).validate(event)
    Draft4Validator(schema).validate(event)
    return event


# (a) the committed schema files


def test_the_committed_schema_files_are_what_the_models_produce() -> None:
    expected = schema_files()
    committed = {path.name: path.read_text(encoding="utf-8") for path in SCHEMA_DIR.glob("*.schema.json")}
    assert sorted(committed) == sorted(expected), f"docs/events/ lists other events than the models; {REGENERATE}"
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert not stale, f"{stale} differ from what the models produce; {REGENERATE}"


@pytest.mark.parametrize("kind", sorted(EVENT_MODELS))
def test_each_schema_is_a_schema_under_both_drafts_and_names_its_detail_type(kind: str) -> None:
    schema = event_schema(kind)
    Draft202012Validator.check_schema(schema)
    Draft4Validator.check_schema(schema)
    # Draft 4, the dialect EventBridge's schema registry takes: `id`, not `$id`; no `const`
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#" and "const" not in json.dumps(schema)
    assert schema["title"] == kind and schema["id"] == f"urn:tollbooth:events:{kind}:v1"
    assert schema["properties"]["type"]["enum"] == [kind] and schema["properties"]["schema_version"]["enum"] == [1]
    assert schema["required"] == list(EVENT_MODELS[kind].model_fields)  # null-valued fields are sent, as null


# (b) docs/events.md


def doc_sections() -> dict[str, str]:
    """docs/events.md's sections by heading: the events' are headed by their type in backticks."""
    parts = re.split(r"^## (.+)$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {heading.strip("`"): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def table_fields(section: str) -> set[str]:
    """Every field a section's table names in its first column."""
    cells = re.findall(r"^\| ([^|]+) \|", section, flags=re.MULTILINE)
    return {name for cell in cells for name in re.findall(r"`([a-z_]+)`", cell)}


@pytest.mark.parametrize("kind", sorted(EVENT_MODELS))
def test_the_doc_has_a_section_per_event_naming_exactly_its_fields(kind: str) -> None:
    sections = doc_sections()
    assert kind in sections, f"docs/events.md has no section '## `{kind}`'"
    fields = set(EVENT_MODELS[kind].model_fields)
    documented = table_fields(sections[kind])
    assert fields - documented == set(), f"docs/events.md does not document these fields of {kind}"
    assert documented - fields == set(), f"docs/events.md documents fields {kind} does not have"
    assert f"(events/{kind}.schema.json)" in DOC.read_text(encoding="utf-8"), "the doc does not link the schema"


@pytest.mark.parametrize("kind", sorted(EVENT_MODELS))
def test_the_doc_example_of_each_event_is_valid(kind: str) -> None:
    (example,) = re.findall(r"```json\n(.*?)```", doc_sections()[kind], flags=re.DOTALL)
    assert valid(json.loads(example))["type"] == kind


# (c) the events the code builds


def test_a_write_off_publishes_a_valid_credits_expired_with_its_breakage() -> None:
    mutation = write_off(account(PAID, FREE), PAID, T + 1234)
    (event,) = mutation.pending_events
    assert valid(event) == {
        "schema_version": 1,
        "event_id": "credits.expired:alice:lot_paid",
        "type": "credits.expired",
        "account_id": "alice",
        "lot_id": "lot_paid",
        "source": "purchase",
        "package_id": "starter",
        "plan_id": None,
        "amount": "700.000",
        "expires_at": clock.to_iso(T),
        "occurred_at": clock.to_iso(T + 1234),
        "entry_id": mutation.entries[0].entry_id,
        "breakage_minor": 699,
        "currency": "USD",
    }
    (free,) = write_off(account(PAID, FREE), FREE, T).pending_events
    assert (valid(free)["breakage_minor"], free["currency"], free["plan_id"]) == (None, None, "pro")


def test_a_warning_publishes_a_valid_credits_expiring_per_lot() -> None:
    mutation = warn(account(PAID, FREE), [PAID, FREE], T - 7 * DAY)
    events = [valid(event) for event in mutation.pending_events]
    assert [(e["type"], e["event_id"], e["amount"]) for e in events] == [
        ("credits.expiring", "credits.expiring:alice:lot_paid", "700.000"),
        ("credits.expiring", "credits.expiring:alice:lot_free", "2.500"),
    ]
    assert list(events[0]) == list(EVENT_MODELS["credits.expiring"].model_fields)  # the order it always had


def test_usage_the_lots_cannot_pay_publishes_a_valid_account_overdrawn() -> None:
    record = UsageRecord.model_validate(usage("u1", "alice", credits=5))
    occurred = clock.from_datetime(record.occurred_at)
    charge = price(load_history().in_force(occurred), record.feature, record.quantity, record.dimensions)
    broke = account(Lot("lot_small", "promotional", 1_000, 1_000, occurred - DAY))
    mutation, included = usage_mutation(broke, [(0, record, charge)], occurred + 60_000, 100)
    (event,) = mutation.pending_events
    entry = mutation.entries[0]
    assert len(included) == 1 and mutation.arrears_change == charge.amount - 1_000 > 0
    assert valid(event) == {
        "schema_version": 1,
        "event_id": f"account.overdrawn:alice:{entry.seq}",
        "type": "account.overdrawn",
        "account_id": "alice",
        "arrears": "4.000",
        "entry_id": entry.entry_id,
        "occurred_at": clock.to_iso(occurred + 60_000),
    }


def invalid_variants(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Ways a detail could drift from its contract."""
    return [
        {**event, "amount": 700.0},  # a number, not a decimal string
        {**event, "expires_at": "2027-11-25"},  # not an instant
        {**event, "type": "credits.expiring"},  # another event's type
        {**event, "schema_version": 2},
        {**event, "surprise": True},
        {key: value for key, value in event.items() if key != "currency"},  # null-valued fields are sent
    ]


@pytest.mark.parametrize("index", range(6))
def test_the_models_and_the_schemas_refuse_a_detail_off_contract(index: int) -> None:
    (event,) = write_off(account(PAID), PAID, T).pending_events
    drifted = invalid_variants(event)[index]
    with pytest.raises(ValidationError):
        EVENT_MODELS["credits.expired"].model_validate(drifted)
    for validator in (Draft202012Validator, Draft4Validator):
        with pytest.raises(SchemaViolation):
            validator(event_schema("credits.expired")).validate(drifted)


def test_a_lot_event_is_only_built_for_a_lot_event_type() -> None:
    with pytest.raises(KeyError):
        lot_event("account.overdrawn", "alice", PAID, 1, T)
