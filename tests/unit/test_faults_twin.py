"""Faults on the in-memory twin: a write that fails before it commits, and one that commits
and whose answer is lost. Every write path, retried as a client or SQS would: it takes
effect exactly once, nothing is half-applied, and the ledger adds up.
(tests/integration/test_faults.py injects the same faults into botocore on both engines.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.ledger import (
    Clock,
    DeadLetterBox,
    Recorder,
    assert_conserved,
    buy,
    grant,
    ledger_over,
    usage,
    words,
)
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.ingestion import UsageIngestor
from tollbooth.app.service import LedgerService
from tollbooth.app.sweep import ExpirySweeper
from tollbooth.contracts.usage import message_body
from tollbooth.domain import clock as clocks
from tollbooth.domain.catalog import load_history
from tollbooth.domain.errors import StorageUnavailable
from tollbooth.domain.expiry import ExpiryIndexing
from tollbooth.domain.ledger import Mutation

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
DAY = 86_400_000
INDEXING = ExpiryIndexing(warning_window=7 * DAY, shards=2)


class Faulty(MemoryStore):
    """Fails the next ``armed`` writes: ``before`` the commit, or ``lost`` (committed, unanswered)."""

    def __init__(self) -> None:
        super().__init__(expiry=INDEXING)
        self.mode = "before"
        self.armed = 0

    def apply(self, mutation: Mutation, now: int) -> None:
        if self.armed <= 0:
            return super().apply(mutation, now)
        self.armed -= 1
        if self.mode == "lost":
            super().apply(mutation, now)
        raise StorageUnavailable("the ledger store failed; retry the request")


def allowance(ledger: LedgerService) -> Any:
    plan_id = next(iter(load_history().in_force(NOW).plans))
    return ledger.grant_allowance("a", plan_id, datetime(2027, 2, 1, tzinfo=UTC))


def ingest(ledger: LedgerService) -> Any:
    """A usage message delivered by SQS; a store failure sends it back to the queue, as raising would."""
    retry, report = UsageIngestor(ledger, Recorder(), DeadLetterBox()).ingest(
        [("m1", message_body([usage("e1", "a"), usage("e2", "a")]))]
    )
    if retry:
        raise StorageUnavailable("the message goes back to the queue")
    return report.charged


WRITES: dict[str, Callable[[LedgerService], Any]] = {
    "purchase": lambda ledger: buy(ledger, "a", "standard", "pi_1"),
    "grant": lambda ledger: grant(ledger, "a", 5, "g1"),
    "allowance": allowance,
    "consume": lambda ledger: words(ledger, "a", 3, "c1"),
    "usage": ingest,
}


@pytest.mark.parametrize("mode", ["before", "lost"])
@pytest.mark.parametrize("path", sorted(WRITES))
def test_a_write_that_fails_or_loses_its_answer_takes_effect_once_when_retried(path: str, mode: str) -> None:
    store = Faulty()
    clock = Clock()
    clock.pinned = NOW
    ledger = ledger_over(store, clock)
    grant(ledger, "a", 100, "fund")
    entries = len(store.list_entries("a", 100).entries)
    # When the write fails (or commits, and the answer is lost) on its first try
    store.mode, store.armed = mode, 1
    with pytest.raises(StorageUnavailable):
        WRITES[path](ledger)
    assert len(store.list_entries("a", 100).entries) == entries + (1 if mode == "lost" else 0)
    # Then retrying it, twice, takes effect exactly once
    WRITES[path](ledger)
    again = WRITES[path](ledger)
    assert getattr(again, "replayed", False) or (path == "usage" and again == 0)
    assert len(store.list_entries("a", 100).entries) == entries + 1
    assert_conserved(store, "a")


@pytest.mark.parametrize("mode", ["before", "lost"])
def test_a_sweep_write_that_fails_or_loses_its_answer_is_finished_once_by_the_next_run(mode: str) -> None:
    store = Faulty()
    clock = Clock()
    clock.pinned = NOW
    ledger = ledger_over(store, clock)
    grant(ledger, "a", 7, "fund", expires_at=NOW + DAY)
    clock.pinned = NOW + DAY
    store.mode, store.armed = mode, 1
    failed = ExpirySweeper(store, Recorder(), INDEXING, now=clock).sweep()
    ExpirySweeper(store, Recorder(), INDEXING, now=clock).sweep()
    assert failed.failures == 1
    assert store.load_account("a").expired == 7000 and store.load_account("a").lots == ()
    assert [e.kind for e in store.list_entries("a", 100).entries].count("expire") == 1
    assert_conserved(store, "a")
