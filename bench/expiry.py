"""Expiry benchmark: sweep the due lots out of a table that mostly holds lots not yet due.

On DynamoDB Local, it seeds ``BENCH_EXPIRY_IDLE`` lots that are not due (spread over
accounts of 10 lots each, expiring in six months) and ``BENCH_EXPIRY_DUE`` lots that are
due (one per account, each account also holding lots that are not due), then runs one
sweep and counts, per expired lot, the items DynamoDB read and the write requests made.
Work must follow what is due, not the size of the table.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import COUNTER, Discard

IDLE_LOTS = int(os.environ.get("BENCH_EXPIRY_IDLE", "100000"))
DUE_LOTS = int(os.environ.get("BENCH_EXPIRY_DUE", "1000"))
DAY = 86_400_000


def bench_expiry(dynamodb_url: str) -> dict[str, Any]:
    from tollbooth.adapters.dynamodb import Repository
    from tollbooth.app.sweep import ExpirySweeper
    from tollbooth.domain.clock import now_ms
    from tollbooth.domain.expiry import ExpiryIndexing
    from tollbooth.domain.ledger import Account, Lot
    from tollbooth_local.aws import create_table
    from tollbooth_local.template import Template

    table = f"bench-expiry-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_url, table, Template().resources["LedgerTable"]["Properties"])
    indexing = ExpiryIndexing(warning_window=7 * DAY, shards=8)
    repository = Repository(table, "us-east-1", endpoint_url=dynamodb_url, expiry=indexing)
    now = now_ms()

    def lot(n: int, expires_at: int) -> Lot:
        return Lot(f"lot-{n}", "purchase", 1000, 1000, now - 400 * DAY, expires_at, price_minor=100, currency="USD")

    def account(account_id: str, lots: list[Lot]) -> Account:
        total = sum(x.remaining for x in lots)
        return Account(account_id, version=1, balance=total, granted=total, lots=tuple(lots))

    later = now + 180 * DAY
    seeded = [account(f"idle-{a}", [lot(a * 10 + i, later) for i in range(10)]) for a in range(IDLE_LOTS // 10)]
    # A due account also holds lots that are not due: only the due one may be written off.
    seeded += [account(f"due-{a}", [lot(-a - 1, now - DAY), lot(10**9 + a, later)]) for a in range(DUE_LOTS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda start: repository.seed(seeded[start : start + 200], now), range(0, len(seeded), 200)))
    seed_seconds = time.perf_counter() - started

    sweeper = ExpirySweeper(repository, Discard(), indexing)
    COUNTER.reset()
    COUNTER.enabled = True
    started = time.perf_counter()
    report = sweeper.sweep()
    seconds = time.perf_counter() - started
    COUNTER.enabled = False
    expired = report.expired_lots
    reads = COUNTER.operations["Query"] + COUNTER.operations["GetItem"]
    writes = COUNTER.operations["TransactWriteItems"] + COUNTER.operations["PutItem"] + COUNTER.operations["UpdateItem"]
    return {
        "idle_lots": IDLE_LOTS + DUE_LOTS,  # every due account also holds one lot that is not due
        "due_lots": DUE_LOTS,
        "expired": expired,
        "complete": report.complete,
        "seconds": seconds,
        "seed_seconds": seed_seconds,
        "items_read_per_lot": COUNTER.items_read / expired,
        "read_requests": reads,
        "write_requests_per_lot": writes / expired,
        "operations": dict(COUNTER.operations),
    }


def render(result: dict[str, Any]) -> str:
    ops = ", ".join(f"{name} {count}" for name, count in sorted(result["operations"].items()))
    return "\n".join(
        [
            "### Expiry sweep",
            "",
            f"DynamoDB Local. One sweep over a table holding {result['idle_lots']:,} lots that are not due and "
            f"{result['due_lots']:,} that are (one per account; each such account holds one more lot that is "
            f"not due). Expired {result['expired']:,} lots in {result['seconds']:.1f} s "
            f"(complete: {result['complete']}).",
            "",
            "| items read per expired lot (target <= 1.2) | write requests per expired lot | requests |",
            "|---|---|---|",
            f"| {result['items_read_per_lot']:.3f} | {result['write_requests_per_lot']:.2f} | {ops} |",
            "",
            "Per account the sweep reads one index item (the account item, which carries the summary of its "
            "expiring lots), writes one transaction per lot written off (entry, lot, account, outbox), then "
            "publishes the outbox and empties it with one more write.",
            "",
        ]
    )
