"""The store contract for escrow slices (``domain.slices``), on the twin, moto and DynamoDB
Local: a refill moves lot credits into slices with the account; a slice's consume writes
its slice, its entry (in the slice's partition) and its key, never the account; a recall
puts credits back, re-creating a lot that left the store; each write is guarded by the
slice's version, and reads back exactly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.contract.conftest import DAY, NOW, Store, applied, credit, full_lot, lot, record
from tollbooth.app.ports import WriteConflict
from tollbooth.domain import holds, slice_holds, slices
from tollbooth.domain.catalog import load_history
from tollbooth.domain.debits import consume
from tollbooth.domain.hold_state import DueHold
from tollbooth.domain.ledger import Account, Mutation
from tollbooth.domain.slice_state import SliceMove

HISTORY = load_history()
PRICED_AT = 1_801_000_000_000  # 2027: a catalog version in force (the contract's NOW predates them)


def charge_of(credits: int):  # type: ignore[no-untyped-def]
    """A text_generation consume worth ``credits`` credits, and what may pay for it."""
    return consume(HISTORY.in_force(PRICED_AT), "text_generation", credits * 500, {})


def refilled(store: Store, account: Account, index: int, needed: int, share: int = 4) -> Account:
    charge, use = charge_of(needed)
    mutation = slices.refill(
        account, index, charge.amount, use, NOW, share=share, max_items=store.max_transaction_items, window=0
    )
    assert mutation is not None
    return applied(store, mutation)


def spent(store: Store, account_id: str, index: int, credits: int, key: str) -> Mutation:
    charge, use = charge_of(credits)
    view = store.load_slice(account_id, index)
    mutation = slices.spend(view, index, charge, use, NOW, key, {"kind": "system", "id": "t"})
    entry = mutation.entries[0]
    mutation = replace(mutation, records=(record(key, entry.seq),))
    store.apply(mutation, NOW)
    return mutation


def test_a_refill_moves_credits_into_slices_with_the_account_and_reads_back(store: Store) -> None:
    # Given an account with one lot with every field set
    account = applied(store, credit(Account(account_id="a"), full_lot()))
    # When slice 2 is refilled (and its siblings get a share)
    loaded = refilled(store, account, 2, needed=10)
    # Then the account item records each slice's escrow, the slices hold portions of the
    # lot with its terms, and the account reads back as the domain computed it
    assert {e.index for e in loaded.escrow} == {0, 1, 2, 3} == set(loaded.streams)
    held = loaded.slice(2)
    assert held.version == 1 and held.portions[0].priority == full_lot().priority
    assert held.portions[0].licences == full_lot().licences and held.portions[0].unlocks == full_lot().unlocks
    assert store.load_slice("a", 2).slice(2) == held
    assert store.entry_streams("a") == (0, 1, 2, 3)
    assert store.load_own("a") == replace(loaded, slices=())  # its own side alone: one Query
    assert sum(s.held for s in loaded.slices) + sum(x.remaining for x in loaded.lots) == 5_000_000
    assert loaded.balance == 5_000_000 - loaded.escrowed


def test_the_lots_a_slice_sends_back_through_the_account_round_trip(store: Store) -> None:
    loaded = refilled(store, applied(store, credit(Account(account_id="a"), full_lot())), 2, needed=10)
    held = loaded.slice(2)
    told = replace(held, version=held.version + 1, through_account=("lot-a", "lot-b"))
    escrow = next(e for e in loaded.escrow if e.index == 2)
    after = applied(store, Mutation(loaded, slice_moves=(SliceMove(held, told, escrow),)))
    assert after.slice(2).through_account == ("lot-a", "lot-b") == store.load_slice("a", 2).slice(2).through_account


def test_a_slices_consume_writes_its_slice_and_entry_and_not_the_account(store: Store) -> None:
    account = refilled(store, applied(store, credit(Account(account_id="a"), lot("l1", 100_000))), 1, needed=5)
    # When slice 1 pays for two consumes
    spent(store, "a", 1, 3, "k1")
    spent(store, "a", 1, 2, "k2")
    # Then the account item is as it was; the slice spent 5 credits in entries 1 and 2 of
    # its own stream, with no balance_after; the keys are kept
    after = store.load_account("a")
    assert after.version == account.version and after.escrow == account.escrow
    assert after.slice(1).consumed == 5000 and after.slice(1).seq == 2
    page = store.list_entries("a", 10, stream=1)
    assert [(e.seq, e.slice, e.amount, e.balance_after) for e in page.entries] == [
        (2, 1, -2000, None),
        (1, 1, -3000, None),
    ]
    assert store.list_entries("a", 10).entries[0].kind == "grant"  # the account's own stream
    assert store.find_idempotency_record("a", "k2") is not None


def test_a_slice_written_from_a_stale_version_is_cancelled(store: Store) -> None:
    refilled(store, applied(store, credit(Account(account_id="a"), lot("l1", 100_000))), 0, needed=5)
    charge, use = charge_of(1)
    stale = store.load_slice("a", 0)
    spent(store, "a", 0, 1, "k1")
    mutation = slices.spend(stale, 0, charge, use, NOW, "k2", {})
    try:
        store.apply(mutation, NOW)
    except WriteConflict as conflict:
        assert conflict.reason == WriteConflict.VERSION
    else:
        raise AssertionError("a stale slice was written")
    assert store.load_slice("a", 0).slice(0).seq == 1


def test_a_replayed_key_on_a_slice_names_the_key(store: Store) -> None:
    refilled(store, applied(store, credit(Account(account_id="a"), lot("l1", 100_000))), 0, needed=5)
    spent(store, "a", 0, 1, "k1")
    charge, use = charge_of(1)
    again = slices.spend(store.load_slice("a", 0), 0, charge, use, NOW, "k1", {})
    again = replace(again, records=(record("k1", again.entries[0].seq),))
    try:
        store.apply(again, NOW)
    except WriteConflict as conflict:
        assert (conflict.reason, conflict.keys) == (WriteConflict.IDEMPOTENCY_KEY, {"k1"})
    else:
        raise AssertionError("a used key was written twice")


def test_a_recall_puts_credits_back_and_recreates_a_lot_that_left(store: Store) -> None:
    # Given a lot whose every credit went into slices (it left the store) and another
    account = applied(
        store, credit(Account(account_id="a"), lot("small", 4000, expires_at=NOW + 10 * DAY), lot("big", 100_000))
    )
    charge, use = charge_of(4)
    moved = slices.refill(account, 0, charge.amount, use, NOW, share=1, max_items=store.max_transaction_items, window=0)
    assert moved is not None
    account = applied(store, moved)
    assert "small" not in {x.lot_id for x in account.lots}
    spent(store, "a", 0, 1, "k1")
    account = store.load_account("a")
    # When slice 0 is recalled
    loaded = applied(store, slices.recall(account, 0, 0))
    # Then its credits are back in their lots (the small one re-created with its terms),
    # what it spent is in the account's totals, and it holds nothing
    assert {x.lot_id: x.remaining for x in loaded.lots} == {"small": 3000, "big": 100_000}
    assert loaded.escrow == () and loaded.consumed == 1000 and loaded.slice(0).held == 0
    assert loaded.balance == loaded.granted - loaded.consumed


def test_a_hold_on_a_slice_lives_in_its_partition_is_listed_and_found_by_the_sweeps_index(store: Store) -> None:
    # Given a refilled slice 1 holding a hold of 4 credits, placed on it alone
    account = refilled(store, applied(store, credit(Account(account_id="a"), lot("l1", 100_000))), 1, needed=5)
    catalog = HISTORY.in_force(PRICED_AT)
    asked = holds.HoldRequest(None, None, {}, 4000, 600)
    placed = slice_holds.place_on_slice(catalog, store.load_slice("a", 1), 1, asked, NOW, "h1", {}, 0)
    store.apply(replace(placed, records=(record("h1", 1),)), NOW)
    assert placed.hold is not None
    hold = placed.hold.after
    # Then the account item is untouched; the slice reads back with the hold's reference,
    # the hold reads back whole (its pending event too), and the list finds it
    assert store.load_account("a").version == account.version
    assert store.load_slice("a", 1).slice(1).holds == placed.slice_moves[0].after.holds
    assert store.find_hold("a", hold.hold_id) == hold and [h.hold_id for h in store.list_holds("a", 10)] == [
        hold.hold_id
    ]
    # And the sweep's index finds it at once (an event to publish), then at its expiry
    due = [d for shard in range(store.expiry.shards) for d in store.accounts_due(shard, NOW)]
    assert [d.hold.hold_id for d in due if isinstance(d, DueHold)] == [hold.hold_id]
    store.apply(slice_holds.published("a", hold), NOW)
    assert not [d for shard in range(store.expiry.shards) for d in store.accounts_due(shard, NOW)]
    later = [d for shard in range(store.expiry.shards) for d in store.accounts_due(shard, hold.expires_at)]
    assert [d.hold.hold_id for d in later if isinstance(d, DueHold)] == [hold.hold_id]
    # And a second placement of the same hold is refused by its guard
    with pytest.raises(WriteConflict):
        store.apply(placed, NOW)
