"""An account's outbox through a long event outage: its events wait, none lost, and the
account item stays small (``domain.outbox_state``): past ``ON_ITEM`` events a change moves
the outbox into a spill, an item of its own, and the sweep publishes the spills, oldest
first, once EventBridge takes events again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.ledger import Clock, Recorder, assert_conserved, grant, ledger_over
from tollbooth.adapters.keys import Keys
from tollbooth.adapters.memory import MemoryStore
from tollbooth.adapters.memory_items import item_size
from tollbooth.app.context import Caller, RequestContext
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.service import LedgerService
from tollbooth.app.sweep import ExpirySweeper
from tollbooth.domain import clock as clocks
from tollbooth.domain.adjustments import Correction
from tollbooth.domain.ledger import Account, Mutation
from tollbooth.domain.outbox import ON_ITEM, spilling

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
OPS = RequestContext(Caller("service", "arn:aws:sts::123456789012:assumed-role/support-tools/s"), "req-1")


def take_one(ledger: LedgerService, key: str) -> None:
    """An operator's correction of one credit out: one ``credits.adjusted`` event."""
    idem = Idempotency.of(key, "adjustment", "a", {"credits": -1})
    answer = ledger.adjust("a", -1000, Correction("test", "support:ana"), False, idem, context=OPS)
    assert answer.status_code == 201


def through_an_outage(clock: Clock, changes: int, store: MemoryStore | None = None) -> tuple[MemoryStore, Recorder]:
    """An account that took ``changes`` corrections while EventBridge refused every event,
    and the publisher, taking events again."""
    store, events = store or MemoryStore(), Recorder()
    ledger = ledger_over(store, clock, publisher=events)
    grant(ledger, "a", 2000, "g1")
    events.failing = True
    for n in range(changes):
        take_one(ledger, f"k{n}")
    events.failing = False
    return store, events


def spills_stored(store: MemoryStore) -> list[str]:
    return [item["sk"] for item in store.raw_items(Keys.account("a")) if item["type"] == "outbox"]


@pytest.fixture
def clock() -> Clock:
    return Clock.at(NOW)


def test_a_change_leaving_more_than_the_limit_on_the_account_item_moves_the_outbox_to_a_spill() -> None:
    events = tuple({"type": "credits.adjusted", "n": n} for n in range(ON_ITEM + 1))
    kept = Mutation(Account("a"), pending_events=events[:ON_ITEM])
    assert spilling(kept, NOW) is kept
    moved = spilling(Mutation(Account("a"), pending_events=events), NOW)
    assert moved.pending_events == () and moved.spill is not None and moved.spill.events == events
    assert moved.account_after.spilled[0].events == ON_ITEM + 1 and moved.transaction_items == 2


def test_an_account_keeps_taking_changes_through_a_long_outage_and_every_event_goes_out_once_in_order(
    clock: Clock,
) -> None:
    # Given EventBridge refused every event while an account took 950 corrections, more
    # events than its item could carry (some 300 KB of them, where 400 KB stops its writes)
    store, events = through_an_outage(clock, 950)
    # Then every change was taken, and the account item stays small: its events wait in spills
    item = store.raw_items(Keys.account("a"))[0]
    assert item["sk"] == Keys.ACCOUNT_SK and item_size(item) < 32 * 1024
    assert len(spills_stored(store)) == 950 // (ON_ITEM + 1)
    # When EventBridge takes events again, Then one sweep publishes each once, oldest first
    report = ExpirySweeper(store, events, store.expiry, now=clock).sweep()
    entries = [e.entry_id for e in reversed(store.list_entries("a", 2000).entries) if e.kind == "adjustment"]
    assert [event["entry_id"] for event in events.events] == entries and len(entries) == 950
    assert report.events_published == 950 and report.outbox_backlog == 0
    # And nothing waits any more: no spill, an empty outbox, the account not due
    account = store.load_account("a")
    assert (account.pending_events, account.spilled, spills_stored(store)) == ((), (), [])
    assert not [due for shard in range(store.expiry.shards) for due in store.accounts_due(shard, NOW + 10**12)]
    assert_conserved(store, "a")


def test_spills_more_than_one_transaction_deletes_go_out_over_several_writes(clock: Clock) -> None:
    # Given a store taking 10 items a transaction, and 13 spills waiting
    store, events = through_an_outage(clock, 13 * (ON_ITEM + 1) + 5, MemoryStore(max_transaction_items=10))
    assert len(spills_stored(store)) == 13
    # When the sweep publishes them, Then it takes 9 spills, then the other 4 and the item's own
    report = ExpirySweeper(store, events, store.expiry, now=clock).sweep()
    assert [len(batch) for batch in events.batches] == [9 * (ON_ITEM + 1), 4 * (ON_ITEM + 1) + 5]
    assert report.events_published == 13 * (ON_ITEM + 1) + 5 and spills_stored(store) == []


def test_after_an_outage_a_request_publishes_the_oldest_spill_and_leaves_the_rest_to_the_sweep(
    clock: Clock,
) -> None:
    # Given three spills waiting after an outage
    store, events = through_an_outage(clock, 3 * (ON_ITEM + 1))
    assert len(spills_stored(store)) == 3
    # When EventBridge is back and a container makes a change with an event
    take_one(ledger_over(store, clock, publisher=events), "after")
    # Then it publishes the oldest spill only (a request stays short); the sweep, the rest
    assert len(events.events) == ON_ITEM + 1 and len(spills_stored(store)) == 2
    ExpirySweeper(store, events, store.expiry, now=clock).sweep()
    assert len(events.events) == 3 * (ON_ITEM + 1) + 1 and spills_stored(store) == []
    assert len({event["event_id"] for event in events.events}) == len(events.events)


def test_a_request_whose_change_spilled_publishes_at_once_when_eventbridge_is_back(clock: Clock) -> None:
    # Given events waiting while EventBridge was down, and a container that has stopped trying
    store, events = through_an_outage(clock, ON_ITEM)
    # When EventBridge is back and another container's change spills the outbox
    take_one(ledger_over(store, clock, publisher=events), "spills")
    # Then that request publishes every event at once, and nothing waits
    assert len(events.events) == ON_ITEM + 1 and spills_stored(store) == []
    assert store.load_account("a").pending_events == ()
