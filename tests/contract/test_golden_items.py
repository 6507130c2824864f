"""Golden items: the exact items the Repository stores for a representative account,
compared with the JSON committed in ``golden/``, so that any change to the stored shape
(an attribute renamed, added, dropped or retyped) shows up as a diff in review. And the
in-memory twin must store the same items, and read back the same domain objects.

Ids and instants are fixed by the mutations below, so nothing needs normalising. After an
intended change of shape, rewrite the files with ``TOLLBOOTH_UPDATE_GOLDEN=1 pytest
tests/contract/test_golden_items.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from tests.contract.conftest import DAY, NOW, full_lot, lot
from tollbooth.adapters.dynamodb import Keys, Repository
from tollbooth.adapters.memory import MemoryStore
from tollbooth.domain.ledger import Account, Draw, IdempotencyRecord, LedgerEntry, Mutation
from tollbooth_local.aws import client

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TOLLBOOTH_UPDATE_GOLDEN") == "1"
ACCOUNT_ID = "golden"
PAYMENT = "pi_golden_1"
CALLER = {"subject": "svc-billing", "role": "service"}
RECORD_KEYS = ("buy-1", "use-1")  # each idempotency record has a partition of its own


def purchase() -> Mutation:
    """A purchase: a lot with every field, a bonus lot, its entry, record, payment and event."""
    account = Account(account_id=ACCOUNT_ID)
    bought = full_lot("lot-purchase")
    bonus = lot("lot-bonus", 500_000, expires_at=NOW + 90 * DAY, source="bonus", priority=20, package_id="standard")
    details = {"package_id": "standard", "payment_reference": PAYMENT, "lots": ["lot-purchase", "lot-bonus"]}
    written = LedgerEntry(
        "entry-golden-1", 1, "purchase", 5_500_000, 5_500_000, NOW, "buy-1", {**details, "caller": CALLER}
    )
    body = {
        "account_id": ACCOUNT_ID,
        "balance": "5500.000",
        "lots": [{"lot_id": "lot-purchase", "granted": "5000.000"}],
    }
    answer = IdempotencyRecord("buy-1", "sha256:0f1e2d", 201, body, 1)
    event = {"type": "credits.purchased", "detail": {"account_id": ACCOUNT_ID, "amount": "5500.000", "seq": 1}}
    return Mutation(
        account,
        entries=(written,),
        records=(answer,),
        new_lots=(bought, bonus),
        payment_reference=PAYMENT,
        pending_events=(event,),
    )


def consume(account: Account) -> Mutation:
    """A consume with details: it draws from the bonus lot, and the outbox was published."""
    details = {
        "feature": "image_generation",
        "quantity": 3,
        "dimensions": {"licence": "commercial", "size": "1024x1024"},
        "draws": [{"lot_id": "lot-bonus", "amount": "1.500"}],
        "caller": CALLER,
    }
    written = LedgerEntry("entry-golden-2", 2, "consume", -1500, 5_498_500, NOW + 60_000, "use-1", details)
    answer = IdempotencyRecord("use-1", "sha256:a1b2c3", 200, {"charged": "1.500", "balance": "5498.500"}, 2)
    return Mutation(account, entries=(written,), records=(answer,), draws=(Draw("lot-bonus", 1500),), pending_events=())


def representative(store: Repository | MemoryStore) -> None:
    first = purchase()
    store.apply(first, NOW)
    store.apply(consume(first.account_after), NOW + 60_000)


def raw_items(dynamodb_url: str, table: str) -> list[dict[str, Any]]:
    """The account's partition and the payment item, as DynamoDB returns them."""
    dynamodb = client("dynamodb", dynamodb_url)
    items = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ACCOUNT#{ACCOUNT_ID}"}},
        ConsistentRead=True,
    )["Items"]
    keys = [(f"PAYMENT#{PAYMENT}", "PAYMENT"), *(Keys.idempotency(ACCOUNT_ID, key) for key in RECORD_KEYS)]
    for pk, sk in keys:
        items.append(
            dynamodb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True)["Item"]
        )
    return items


def normalised(item: dict[str, Any]) -> dict[str, Any]:
    """A set has no order: its members sorted."""
    return {name: {"SS": sorted(value["SS"])} if "SS" in value else value for name, value in sorted(item.items())}


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item's values as Python values (numbers as Decimal, string sets as sets)."""
    return {name: TypeDeserializer().deserialize(value) for name, value in item.items()}


def golden_name(item: dict[str, Any]) -> str:
    """The golden file of an item (with plain values): its type, and which one it is."""
    name = {"lot": "lot_id", "entry": "seq", "idempotency": "key"}.get(item["type"])
    return item["type"] + ("" if name is None else f".{item[name]}") + ".json"


def golden_files() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(GOLDEN.glob("*.json"))}


@pytest.fixture
def repository(engine: Any, table_name: str, quick_clients: None) -> Repository:
    return Repository(
        table_name, "us-east-1", endpoint_url=engine.dynamodb_url, max_transaction_items=engine.max_transaction_items
    )


def test_the_repository_stores_the_golden_items(repository: Repository, engine: Any, table_name: str) -> None:
    # Given a purchase and a consume written through the Repository
    representative(repository)
    # Then the raw items are, attribute for attribute, the committed ones
    stored = {golden_name(plain(item)): normalised(item) for item in raw_items(engine.dynamodb_url, table_name)}
    if UPDATE and engine.name == "moto":
        GOLDEN.mkdir(exist_ok=True)
        for path in GOLDEN.glob("*.json"):
            path.unlink()
        for name, item in stored.items():
            (GOLDEN / name).write_text(json.dumps(item, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert stored == golden_files()


def test_the_memory_store_stores_the_golden_items() -> None:
    # Given the same mutations written to the twin
    store = MemoryStore()
    representative(store)
    # Then its items hold the golden attributes, with the same values and kinds of value
    golden = golden_files()
    items = store.raw_items(f"ACCOUNT#{ACCOUNT_ID}") + store.raw_items(f"PAYMENT#{PAYMENT}")
    items += [item for key in RECORD_KEYS for item in store.raw_items(Keys.idempotency(ACCOUNT_ID, key)[0])]
    stored = {golden_name(item): item for item in items}
    assert stored.keys() == golden.keys()
    for name, item in stored.items():
        assert item == plain(golden[name]), name
        kinds = {"S": str, "N": int, "BOOL": bool, "SS": frozenset}
        assert {k: type(v) for k, v in item.items()} == {k: kinds[next(iter(v))] for k, v in golden[name].items()}


def test_details_past_a_kilobyte_are_stored_compressed_alike_by_both_stores(
    repository: Repository, engine: Any, table_name: str
) -> None:
    # Given a usage entry listing 95 records, written through the Repository and the twin
    twin = MemoryStore()
    first = purchase()
    lines = [{"event_id": f"ev-{n}", "charged": 1000, "drew": [[0, 1000]], "worker_id": "gpu-1"} for n in range(95)]
    used = LedgerEntry("entry-golden-2", 2, "usage", -95_000, 5_405_000, NOW, None, {"records": lines})
    for store in (repository, twin):
        store.apply(first, NOW)
        store.apply(Mutation(first.account_after, entries=(used,), draws=(Draw("lot-bonus", 95_000),)), NOW)
    # Then both keep the same compressed bytes in place of the JSON, a fraction of its size
    key = {"pk": {"S": f"ACCOUNT#{ACCOUNT_ID}"}, "sk": {"S": Keys.entry(2)}}
    stored = client("dynamodb", engine.dynamodb_url).get_item(TableName=table_name, Key=key)["Item"]
    twins = next(item for item in twin.raw_items(f"ACCOUNT#{ACCOUNT_ID}") if item["sk"] == Keys.entry(2))
    assert "details" not in stored and "details" not in twins
    assert stored["details_z"]["B"] == twins["details_z"]
    assert len(twins["details_z"]) * 5 < len(json.dumps(used.details))
    assert repository.find_entry(ACCOUNT_ID, 2) == twin.find_entry(ACCOUNT_ID, 2) == used


def test_an_account_item_written_with_named_summaries_reads_back_alike(
    repository: Repository, engine: Any, table_name: str
) -> None:
    # Given the representative account, its summaries then rewritten in the named form that
    # account items were stored with before the compact list
    representative(repository)
    view = repository.load_expiry_view(ACCOUNT_ID)
    assert view is not None and len(view.lots) == 2
    named = [
        {"id": x.lot_id, "src": x.source, "g": x.granted, "r": x.remaining, "c": x.created_at, "e": x.expires_at}
        | {"pr": x.priority, "p": x.price_minor, "cur": x.currency, "pkg": x.package_id, "plan": x.plan_id}
        | {"w": x.warned, "gr": x.expiry_grace}
        for x in view.lots
    ]
    client("dynamodb", engine.dynamodb_url).update_item(
        TableName=table_name,
        Key={"pk": {"S": f"ACCOUNT#{ACCOUNT_ID}"}, "sk": {"S": Keys.ACCOUNT_SK}},
        UpdateExpression="SET expiring_lots = :named",
        ExpressionAttributeValues={":named": {"S": json.dumps(named)}},
    )
    # Then the sweep's view of it is the same
    assert repository.load_expiry_view(ACCOUNT_ID) == view


def more_mutations(account: Account) -> list[tuple[Mutation, int]]:
    """After the purchase and consume: a warning, a rollover transfer, a write-off, usage in arrears."""
    warned = Mutation(account, warned=("lot-bonus",))
    account = warned.account_after
    rolled_lot = lot(
        "lot-rollover", 1000, expires_at=NOW + 400 * DAY, source="rollover", plan_id="pro", expiry_grace=DAY
    )
    rolled = Mutation(account, transfers=(Draw("lot-purchase", 1000),), new_lots=(rolled_lot,))
    account = rolled.account_after
    expires = NOW + 90 * DAY
    gone = LedgerEntry("entry-golden-3", 3, "expire", -498_500, 5_000_000, expires, None, {"lots": ["lot-bonus"]})
    written_off = Mutation(account, entries=(gone,), expirations=(Draw("lot-bonus", 498_500),))
    account = written_off.account_after
    used = LedgerEntry("entry-golden-4", 4, "usage", -5_000_100, -100, expires, None, {"event_id": "ev-1"})
    draws = (Draw("lot-purchase", 4_999_000), Draw("lot-rollover", 1000))
    usage = Mutation(account, entries=(used,), draws=draws, arrears_change=100, pending_events=({"type": "x"},))
    return [(warned, NOW + DAY), (rolled, NOW + 2 * DAY), (written_off, expires), (usage, expires)]


def reads(store: Repository | MemoryStore) -> list[Any]:
    due = [[a for a in store.accounts_due(shard, at)] for shard in range(8) for at in (NOW, NOW + 400 * DAY)]
    pages = [store.list_entries(ACCOUNT_ID, limit, before) for limit in (1, 3, 10) for before in (None, 2, 4)]
    records = [store.find_idempotency_record(ACCOUNT_ID, key) for key in ("buy-1", "use-1", "nope")]
    return [store.load_account(ACCOUNT_ID), store.load_expiry_view(ACCOUNT_ID), due, pages, records]


def test_the_memory_store_reads_back_what_the_repository_reads_back(repository: Repository) -> None:
    # Given the same mutations applied to the Repository and to the twin, step by step
    twin = MemoryStore()
    first = purchase()
    steps = [(first, NOW), (consume(first.account_after), NOW + 60_000)]
    steps += more_mutations(steps[-1][0].account_after)
    for mutation, now in steps:
        repository.apply(mutation, now)
        twin.apply(mutation, now)
        # Then after each, every read answers the same domain objects
        assert reads(twin) == reads(repository)
