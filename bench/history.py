"""Long-lived accounts: history must cost a consume nothing, and no debit is too large.

1. History. On DynamoDB Local, a veteran account (50,000 ledger entries, written by 5,000
   lots it has spent, which have left the store) and a new account, each holding the same
   two live lots, take turns at cold consumes (no remembered state: load, then write).
   Reported: DynamoDB requests and items read per consume, and the median latency ratio.
2. Large debits. One consume that draws from more lots than one transaction holds: 30
   one-credit lots on DynamoDB Local (10 items per transaction) and 150 on the twin (100,
   as on AWS). Reported: the requests it took and that it left nothing owed.
3. Live expiring lots. Whether an account holding N live expiring lots can still be
   granted credits, on the twin (which refuses an item over 400 KB as DynamoDB does).
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from typing import Any

from bench.common import COUNTER, MAX_GRANT

HISTORY_ENTRIES = int(os.environ.get("BENCH_HISTORY_ENTRIES", "50000"))
SPENT_LOTS = HISTORY_ENTRIES // 10
ROUNDS = int(os.environ.get("BENCH_HISTORY_ROUNDS", "200"))
LIVE_EXPIRING = (1_000, 2_500, 5_000)
DAY = 86_400_000


def _service(store: Any) -> Any:
    from tollbooth.app.service import LedgerService
    from tollbooth.domain.catalog import load_history

    return LedgerService(store, load_history())


def _consume(service: Any, account: str, credits: int, key: str) -> Any:
    from tollbooth.app.idempotency import Idempotency

    quantity = credits * 500  # text_generation: 1 credit per 500 words
    idem = Idempotency.of(key, "consume", account, {"quantity": quantity})
    return service.consume(account, "text_generation", quantity, {}, idem)


def _grant(service: Any, account: str, credits: int, key: str, expires_at: int | None = None) -> None:
    from datetime import UTC, datetime

    from tollbooth.app.idempotency import Idempotency

    expiry = None if expires_at is None else datetime.fromtimestamp(expires_at / 1000, UTC)
    idem = Idempotency.of(key, "grant", account, {"credits": credits, "key": key})
    service.grant(account, credits, "promotional", "bench", expiry, None, idem)


def _seed_history(repository: Any, account: str, entries: int, now: int) -> None:
    """The ledger a veteran account has written: a grant entry per spent lot, the rest consumes."""
    from tollbooth.adapters.dynamodb.items import LedgerItem, ledger_item
    from tollbooth.adapters.keys import Keys
    from tollbooth.domain.ledger import LedgerEntry

    pk = Keys.account(account)
    with LedgerItem.batch_write() as batch:
        for seq in range(1, entries + 1):
            granting = seq % 10 == 1
            amount = 10_000 if granting else -1_000
            details = {"lot_ids": [f"lot-{seq}"]} if granting else {"feature": "text_generation"}
            entry = LedgerEntry(f"led-{seq}", seq, "grant" if granting else "consume", amount, 0, now, None, details)
            batch.save(ledger_item(pk, entry))


def _history(dynamodb_url: str) -> dict[str, Any]:
    from tollbooth.adapters.dynamodb import Repository
    from tollbooth.domain.clock import now_ms
    from tollbooth.domain.ledger import Account, Lot
    from tollbooth_local.aws import create_table
    from tollbooth_local.template import Template

    table = f"bench-history-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_url, table, Template().resources["LedgerTable"]["Properties"])
    repository = Repository(table, "us-east-1", endpoint_url=dynamodb_url, max_transaction_items=10)
    service = _service(repository)
    now = now_ms()
    live = (
        Lot("lot-never", "purchase", MAX_GRANT, MAX_GRANT, now),
        Lot("lot-year", "purchase", MAX_GRANT, MAX_GRANT, now, now + 365 * DAY),
    )
    funds = 2 * MAX_GRANT
    started = time.perf_counter()
    repository.seed(
        [
            Account("veteran", version=1, seq=HISTORY_ENTRIES, balance=funds, granted=funds, lots=live),
            Account("new", version=1, balance=funds, granted=funds, lots=live),
        ],
        now,
    )
    _seed_history(repository, "veteran", HISTORY_ENTRIES, now)
    seed_seconds = time.perf_counter() - started
    timings: dict[str, list[float]] = {"veteran": [], "new": []}
    counts: dict[str, dict[str, Any]] = {}
    for n in range(ROUNDS):
        for account in ("veteran", "new") if n % 2 else ("new", "veteran"):
            service.writes._known.forget(account)  # a cold container: load, then write
            COUNTER.reset()
            COUNTER.enabled = n == 0
            started = time.perf_counter()
            _consume(service, account, 1, f"{account}-{n}")
            timings[account].append(time.perf_counter() - started)
            if n == 0:
                counts[account] = {"requests": dict(COUNTER.operations), "items_read": COUNTER.items_read}
            COUNTER.enabled = False
    medians = {account: statistics.median(values) * 1000 for account, values in timings.items()}
    return {
        "entries": HISTORY_ENTRIES,
        "spent_lots": SPENT_LOTS,
        "seed_seconds": seed_seconds,
        "rounds": ROUNDS,
        "medians_ms": medians,
        "ratio": medians["veteran"] / medians["new"],
        "counts": counts,
    }


def _large_debit(store: Any, lots: int) -> dict[str, Any]:
    from tollbooth.domain.clock import now_ms

    service = _service(store)
    now = now_ms()
    for n in range(lots):
        _grant(service, "big", 1000, f"lot-{n}", expires_at=now + (n + 1) * DAY)
    before = _writes_of(store)
    COUNTER.reset()
    COUNTER.enabled = True
    outcome = _consume(service, "big", lots, "all-of-it")
    COUNTER.enabled = False
    account = store.load_account("big")
    return {
        "lots": lots,
        "max_items": store.max_transaction_items,
        "status": outcome.status_code,
        "transactions": _writes_of(store) - before,
        "owed_after": 0 if account.intent is None else len(account.intent.draws),
        "balance_after": account.balance,
    }


def _writes_of(store: Any) -> int:
    writes = getattr(store, "writes", None)
    return int(writes) if writes is not None else COUNTER.operations["TransactWriteItems"]


def _live_expiring(lots: int) -> dict[str, Any]:
    """Grant into an account holding ``lots`` live expiring lots (seeded), on the twin."""
    from tollbooth.adapters.memory import MemoryStore
    from tollbooth.domain.clock import now_ms
    from tollbooth.domain.errors import TollboothError
    from tollbooth.domain.ledger import Account, Lot

    store = MemoryStore()
    now = now_ms()
    held = tuple(Lot(f"lot-{n}", "purchase", 1000, 1000, now, now + (n + 1) * DAY) for n in range(lots))
    store.seed([Account("many", version=1, balance=1000 * lots, granted=1000 * lots, lots=held)], now)
    try:
        _grant(_service(store), "many", 1000, "one-more", expires_at=now + 400 * DAY)
        return {"lots": lots, "grant": "ok"}
    except TollboothError as error:
        return {"lots": lots, "grant": f"refused ({error.code})"}


def bench_history(dynamodb_url: str) -> dict[str, Any]:
    from tollbooth.adapters.dynamodb import Repository
    from tollbooth.adapters.memory import MemoryStore
    from tollbooth_local.aws import create_table
    from tollbooth_local.template import Template

    history = _history(dynamodb_url)
    table = f"bench-debit-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_url, table, Template().resources["LedgerTable"]["Properties"])
    local = Repository(table, "us-east-1", endpoint_url=dynamodb_url, max_transaction_items=10)
    debits = [("DynamoDB Local", _large_debit(local, 30)), ("twin (AWS limits)", _large_debit(MemoryStore(), 150))]
    return {"history": history, "debits": debits, "live": [_live_expiring(n) for n in LIVE_EXPIRING]}


def render(result: dict[str, Any]) -> str:
    history = result["history"]
    rows = []
    for account in ("new", "veteran"):
        counts = history["counts"][account]
        requests = ", ".join(f"{name} {count}" for name, count in sorted(counts["requests"].items()))
        rows.append(f"| {account} | {history['medians_ms'][account]:.2f} | {requests} | {counts['items_read']} |")
    debit_rows = [
        f"| {engine} | {d['lots']} | {d['max_items']} | {d['status']} | {d['transactions']} | {d['owed_after']} |"
        for engine, d in result["debits"]
    ]
    live = ", ".join(f"{x['lots']:,} lots: {x['grant']}" for x in result["live"])
    return "\n".join(
        [
            "### Long-lived accounts",
            "",
            f"DynamoDB Local. A veteran account ({history['entries']:,} ledger entries; the "
            f"{history['spent_lots']:,} lots it spent have left the store) against a new one, both holding "
            f"the same two live lots: {history['rounds']} cold consumes each, interleaved "
            f"(seeding took {history['seed_seconds']:.0f} s).",
            "",
            "| account | cold consume median (ms) | requests | items read |",
            "|---|---|---|---|",
            *rows,
            "",
            f"Veteran / new median latency: {history['ratio']:.2f} (target <= 1.2).",
            "",
            "One debit across more lots than one transaction holds:",
            "",
            "| engine | lots drawn | items per transaction | status | transactions | draws owed after |",
            "|---|---|---|---|---|---|",
            *debit_rows,
            "",
            f"A grant into an account holding live expiring lots (twin, 400 KB items): {live}.",
            "",
        ]
    )
