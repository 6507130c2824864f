"""One store contract, three stores: the in-memory twin (``MemoryStore``) and the DynamoDB
``Repository`` on moto and on DynamoDB Local. Also the builders the contract writes with."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from functools import cache
from typing import Any

import botocore.session
import pynamodb.connection.base
import pytest

from tollbooth.adapters.dynamodb import Repository
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.ports import WriteConflict
from tollbooth.domain.ledger import Account, Draw, IdempotencyRecord, LedgerEntry, Lot, Mutation
from tollbooth_local.aws import create_table
from tollbooth_local.template import Template

STORES = ["memory", "moto", "dynamodb-local"]
Store = MemoryStore | Repository

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000


# The transaction limit of each engine, as tests/conftest.py's ``engine`` fixture has it:
# AWS and moto take 100 items, the DynamoDB Local build we run 10. That fixture is
# parametrized on its own, so a test parametrized over stores cannot request it.
ENGINE_FIXTURES = {"moto": ("moto_server", 100), "dynamodb-local": ("dynamodb_local", 10)}


@cache
def _table_spec() -> dict[str, Any]:
    return dict(Template().resources["LedgerTable"]["Properties"])


def repository_on(dynamodb_url: str, max_transaction_items: int) -> Repository:
    """A Repository over a fresh table made from template.yaml's definition."""
    name = f"contract-{uuid.uuid4().hex[:12]}"
    create_table(dynamodb_url, name, _table_spec())
    return Repository(name, "us-east-1", endpoint_url=dynamodb_url, max_transaction_items=max_transaction_items)


_sessions = threading.local()


def _session_per_thread() -> botocore.session.Session:
    if getattr(_sessions, "session", None) is None:
        _sessions.session = botocore.session.get_session()
    return _sessions.session


@pytest.fixture
def quick_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """PynamoDB opens a botocore session, which parses botocore's endpoint data, for each of
    the Repository's models: ~0.8 s per Repository. Sharing one per thread (in these tests
    only) makes that ~20 ms and changes nothing else."""
    monkeypatch.setattr(pynamodb.connection.base, "get_session", _session_per_thread)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, quick_clients: None) -> Store:
    if request.param == "memory":
        return MemoryStore()
    server, max_transaction_items = ENGINE_FIXTURES[request.param]
    return repository_on(request.getfixturevalue(server).url, max_transaction_items)


# -- builders ------------------------------------------------------------------------


def lot(lot_id: str, credits: int = 1000, *, expires_at: int | None = None, **fields: Any) -> Lot:
    fields.setdefault("source", "promotional")
    return Lot(lot_id, granted=credits, remaining=credits, created_at=NOW, expires_at=expires_at, **fields)


def full_lot(lot_id: str = "lot-full") -> Lot:
    """A lot with every field away from its default."""
    return Lot(
        lot_id=lot_id,
        source="purchase",
        granted=5_000_000,
        remaining=5_000_000,
        created_at=NOW,
        expires_at=NOW + 365 * DAY,
        priority=49,
        price_minor=3999,
        currency="EUR",
        package_id="standard",
        reason="bought online",
        licences=("commercial", "personal"),
        features=("image_generation", "text_generation"),
        priority_processing=True,
        unlocks=("video_generation",),
        campaign_id="spring-2026",
        plan_id="pro",
        warned=True,
        expiry_grace=3 * DAY,
    )


def entry(account: Account, kind: str, amount: int, *, offset: int = 1, key: str | None = None, **details: Any):
    seq = account.seq + offset
    return LedgerEntry(
        entry_id=f"entry-{account.account_id}-{seq}",
        seq=seq,
        kind=kind,  # type: ignore[arg-type]
        amount=amount,
        balance_after=account.balance + amount,
        created_at=NOW,
        idempotency_key=key,
        details=details,
    )


def record(key: str, seq: int, **body: Any) -> IdempotencyRecord:
    return IdempotencyRecord(key=key, fingerprint=f"fp-{key}", status_code=201, body=body or {"ok": True}, seq=seq)


def credit(account: Account, *lots: Lot, key: str | None = None, **changes: Any) -> Mutation:
    """A grant of ``lots``: one entry, and the key's record when there is a key."""
    written = entry(account, "grant", sum(x.granted for x in lots), key=key, lots=[x.lot_id for x in lots])
    records = () if key is None else (record(key, written.seq),)
    return Mutation(account, entries=(written,), records=records, new_lots=lots, **changes)


def debit(account: Account, *draws: Draw, key: str | None = None, **changes: Any) -> Mutation:
    written = entry(account, "consume", -sum(d.amount for d in draws), key=key, feature="image_generation")
    records = () if key is None else (record(key, written.seq),)
    return Mutation(account, entries=(written,), records=records, draws=draws, **changes)


def applied(store: Store, mutation: Mutation, now: int = NOW) -> Account:
    """Apply and return the account as it now stands in the store."""
    store.apply(mutation, now)
    return store.load_account(mutation.account.account_id)


def sorted_lots(account: Account) -> Account:
    """The account with its lots in key order, as a store reads them back."""
    return replace(account, lots=tuple(sorted(account.lots, key=lambda x: x.lot_id)))


def all_entries(store: Store, account_id: str) -> list[int]:
    return [e.seq for e in store.list_entries(account_id, 1000).entries]


def refused(store: Store, mutation: Mutation, reason: str, now: int = NOW) -> WriteConflict:
    """Apply a mutation that must be cancelled; nothing of it may be written."""
    account_id = mutation.account.account_id

    def state() -> tuple[Any, ...]:
        records = [store.find_idempotency_record(account_id, r.key) for r in mutation.records]
        return store.load_account(account_id), all_entries(store, account_id), records

    before = state()
    with pytest.raises(WriteConflict) as caught:
        store.apply(mutation, now)
    assert caught.value.reason == reason
    assert state() == before
    return caught.value
