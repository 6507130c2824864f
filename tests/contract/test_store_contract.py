"""The LedgerStore contract, written once and run on every store (see conftest.py):
the in-memory twin and the DynamoDB Repository on moto and on DynamoDB Local.

Then what only the twin models (AWS behaviour the local engines never show): overlapping
transactions cancelled, the 4 MB transaction limit, per-partition throughput.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from tests.contract.conftest import (
    DAY,
    NOW,
    Store,
    all_entries,
    applied,
    credit,
    debit,
    entry,
    full_lot,
    lot,
    record,
    refused,
    sorted_lots,
)
from tollbooth.adapters.dynamodb import Keys
from tollbooth.adapters.memory import DynamoDBError, MemoryStore
from tollbooth.app.ports import PaymentRecord, WriteConflict
from tollbooth.domain.claim_state import Claim
from tollbooth.domain.errors import ChangeTooLarge, StorageUnavailable
from tollbooth.domain.hold_state import Hold, HoldChange, HoldRef
from tollbooth.domain.ledger import Account, ChargeReversal, Draw, Intent, Lot, Mutation, PaymentRefund
from tollbooth.domain.outbox_state import Spill, SpillRef

WEEK = 7 * DAY  # the default warning window


def shard_of(store: Store, account_id: str) -> int:
    return int(Keys.expiry_shard(account_id, store.expiry.shards).removeprefix("EXPIRY#"))


def due_everywhere(store: Store, now: int) -> list[str]:
    return [a.account_id for shard in range(store.expiry.shards) for a in store.accounts_due(shard, now)]


# -- reading and round trips ------------------------------------------------------------


def test_a_new_account_reads_as_empty(store: Store) -> None:
    # Given nothing was ever written for "nobody"
    # Then it reads as an empty account with no item, entries, records or due work
    assert store.load_account("nobody") == Account(account_id="nobody")
    assert store.load_expiry_view("nobody") is None
    page = store.list_entries("nobody", 10)
    assert (page.entries, page.next_seq) == ([], None)
    assert store.find_idempotency_record("nobody", "k") is None
    assert due_everywhere(store, NOW + 1000 * DAY) == []


def test_apply_then_load_round_trips_every_field(store: Store) -> None:
    # Given a mutation with every kind of content: a lot with every field set, a plain
    # lot, two entries with nested details, two idempotency records and an outbox
    account = Account(account_id="a")
    first = entry(account, "purchase", 5_000_000, key="k1", payment={"ref": "pi_1", "lots": ["lot-full"]}, n=1.5)
    second = entry(replace(account, seq=1, balance=5_000_000), "grant", 1000, key=None, note="ünïcode ✓")
    events = ({"type": "credits.granted", "detail": {"amount": "5000.000", "lots": [1, 2]}},)
    mutation = Mutation(
        account,
        entries=(first, second),
        records=(record("k1", 1, lots=[{"id": "lot-full"}], balance="5001.000"), record("k2", 2)),
        new_lots=(full_lot(), lot("lot-plain", 1000)),
        pending_events=events,
        arrears_change=0,
    )
    # When it is applied
    loaded = applied(store, mutation)
    # Then every field reads back: the account (lots in key order), entries, records
    assert loaded == sorted_lots(mutation.account_after)
    assert loaded.lots[0] == full_lot() and loaded.version == 1 and loaded.seq == 2
    assert loaded.pending_events == events
    assert store.list_entries("a", 10).entries == [second, first]
    assert store.find_idempotency_record("a", "k1") == mutation.records[0]
    assert store.find_idempotency_record("a", "k2") == mutation.records[1]


def test_a_restriction_to_nothing_reads_back_as_no_restriction(store: Store) -> None:
    # Given a lot whose licences, features and unlocks are empty tuples (not None):
    # DynamoDB has no empty set, and PynamoDB leaves an empty set out of the item
    empty = lot("lot-empty", licences=(), features=(), unlocks=())
    loaded = applied(store, credit(Account(account_id="a"), empty))
    # Then it reads back as "any licence, any feature": every store agrees on this quirk
    assert (loaded.lots[0].licences, loaded.lots[0].features, loaded.lots[0].unlocks) == (None, None, ())


def test_a_lot_leaves_the_store_with_its_last_credit(store: Store) -> None:
    # Given two lots, one of them drawn to zero
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10), lot("l2", 10)))
    loaded = applied(store, debit(account, Draw("l1", 10)))
    # Then loading the account reads only the lot that still holds credits
    assert {x.lot_id: x.remaining for x in loaded.lots} == {"l2": 10}
    assert loaded == sorted_lots(debit(account, Draw("l1", 10)).account_after)


def test_emptying_a_lot_is_guarded_by_exactly_what_is_left(store: Store) -> None:
    # Given a state that believes l1 holds 10 when it holds 6
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10)))
    current = applied(store, debit(account, Draw("l1", 4)))
    stale = replace(current, lots=(lot("l1", 10),))
    # Then a change that writes the lot's item with "the last 10" is cancelled, and nothing is
    # written (a draw kept on the account item is guarded by the account's version alone:
    # the version pins down the state it was computed from)
    refused(store, Mutation(stale, transfers=(Draw("l1", 10),), new_lots=(lot("l9", 10),)), WriteConflict.VERSION)


def test_an_intent_is_kept_with_the_account_until_rolled_forward(store: Store) -> None:
    # Given a debit committed with two draws still owed
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10), lot("l2", 10), lot("l3", 10)))
    owed = Intent("entry-a-2", (Draw("l2", 10), Draw("l3", 4)))
    whole = debit(account, Draw("l1", 10), *owed.draws)
    committed = applied(store, replace(whole, draws=(Draw("l1", 10),), intent_after=owed))
    # Then the account reads back with the intent, and is due for the sweep at once
    assert committed.intent == owed and committed.balance == account.balance - 24
    assert {x.lot_id: x.remaining for x in committed.lots} == {"l2": 10, "l3": 10}
    assert due_everywhere(store, NOW) == ["a"]
    assert store.load_expiry_view("a") == committed
    # When it is rolled forward (draws owed move like transfers: enough left, expired or not)
    finished = applied(store, Mutation(committed, transfers=owed.draws), now=NOW + 365 * DAY)
    # Then the intent is gone, the emptied lot with it, and the lots add up to the balance
    assert finished.intent is None
    assert {x.lot_id: x.remaining for x in finished.lots} == {"l3": 6}
    assert due_everywhere(store, NOW) == []


def test_an_intent_that_gives_credits_back_reads_back_and_rolls_forward(store: Store) -> None:
    # Given a release committed with credits still going back into l1, and a lot still to
    # be made again with every field set (as a large release leaves them)
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10)))
    spent = applied(store, debit(account, Draw("l1", 4)))
    remade = replace(full_lot("l9"), remaining=7)
    owed = Intent("entry-a-3", (), (Draw("l1", 3),), (remade,))
    committed = applied(store, Mutation(spent, entries=(entry(spent, "release", 0),), intent_after=owed))
    # Then the account reads back with the intent, its lots not yet given anything
    assert committed.intent == owed and {x.lot_id: x.remaining for x in committed.lots} == {"l1": 6}
    assert owed.owed == -10
    # When it is rolled forward, the credits go back and the lot is made again
    finished = applied(store, Mutation(committed, returns=owed.returns, new_lots=owed.remade))
    assert finished.intent is None
    assert {x.lot_id: x.remaining for x in finished.lots} == {"l1": 9, "l9": 7}
    assert next(x for x in finished.lots if x.lot_id == "l9") == remade


def test_arrears_and_counters_round_trip(store: Store) -> None:
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10)))
    usage = entry(account, "usage", -15)
    loaded = applied(store, Mutation(account, entries=(usage,), draws=(Draw("l1", 10),), arrears_change=5))
    assert (loaded.balance, loaded.consumed, loaded.granted, loaded.arrears) == (-5, 15, 10, 5)


def test_claims_round_trip_on_the_account_item(store: Store) -> None:
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10)))
    claims = (Claim("l1", 2_500, "absorb", NOW + DAY), Claim("gone", 7, "void"))
    loaded = applied(store, Mutation(account, clawing=claims))
    assert loaded.clawing == claims == store.load_expiry_view("a", NOW).clawing
    assert applied(store, Mutation(loaded, clawing=())).clawing == ()


# -- guards ---------------------------------------------------------------------------------


def test_a_stale_mutation_is_cancelled_with_version_and_writes_nothing(store: Store) -> None:
    # Given an account at version 1
    fresh = Account(account_id="a")
    store.apply(credit(fresh, lot("l1"), key="k1"), NOW)
    # When a mutation computed from version 0 arrives, Then VERSION, and none of it is written
    refused(store, credit(fresh, lot("l2"), key="k2"), WriteConflict.VERSION)
    assert store.find_idempotency_record("a", "k2") is None
    # Nor may a mutation claim a version the account never had, or one of an account never written
    refused(store, credit(replace(fresh, version=7), lot("l3")), WriteConflict.VERSION)
    refused(store, credit(Account(account_id="b", version=1), lot("l4")), WriteConflict.VERSION)
    assert store.load_account("b") == Account(account_id="b")


def test_an_idempotency_conflict_names_the_keys_already_used(store: Store) -> None:
    # Given "k1" was used
    account = applied(store, credit(Account(account_id="a"), lot("l1"), key="k1"))
    # When a mutation records "k2" then "k1"
    written = entry(account, "grant", 1000, key="k2")
    both = Mutation(account, entries=(written,), records=(record("k2", 2), record("k1", 2)), new_lots=(lot("l2"),))
    # Then IDEMPOTENCY_KEY names "k1" alone, and "k2" was not written either
    assert refused(store, both, WriteConflict.IDEMPOTENCY_KEY).keys == {"k1"}
    assert store.find_idempotency_record("a", "k2") is None
    assert store.find_idempotency_record("a", "k1") == record("k1", 1)
    # And when two of its keys were used, it names both
    account = applied(store, credit(account, lot("l3"), key="k3"))
    written = entry(account, "grant", 1000, key="k1")
    three = (record("k1", 3), record("k4", 3), record("k3", 3))
    again = Mutation(account, entries=(written,), records=three, new_lots=(lot("l4"),))
    assert refused(store, again, WriteConflict.IDEMPOTENCY_KEY).keys == {"k1", "k3"}


def test_a_used_key_is_named_when_the_transaction_also_deletes_a_lot(store: Store) -> None:
    # Given "k1" was used, and a debit under "k1" again that would take l1's last credit
    # (the store deletes the lot, and DynamoDB orders deletes before puts)
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10), lot("l2", 10), key="k1"))
    emptying = debit(account, Draw("l1", 10), key="k1")
    # Then the conflict is still the used key, never a lost race
    assert refused(store, emptying, WriteConflict.IDEMPOTENCY_KEY).keys == {"k1"}


def test_a_stale_mutation_with_a_used_key_reports_the_key(store: Store) -> None:
    # Given "k1" was used; When its request is retried from the state before it,
    # Then the key wins over the version: the service replays the first answer
    fresh = Account(account_id="a")
    store.apply(credit(fresh, lot("l1"), key="k1"), NOW)
    assert refused(store, credit(fresh, lot("l2"), key="k1"), WriteConflict.IDEMPOTENCY_KEY).keys == {"k1"}


def test_a_payment_reference_grants_once_across_accounts(store: Store) -> None:
    store.apply(credit(Account(account_id="a"), lot("l1"), payment_reference="pi_1"), NOW)
    refused(
        store, credit(Account(account_id="b"), lot("l2"), payment_reference="pi_1"), WriteConflict.PAYMENT_REFERENCE
    )
    assert store.load_account("b") == Account(account_id="b")
    store.apply(credit(Account(account_id="b"), lot("l2"), payment_reference="pi_2"), NOW)


def test_a_draw_never_takes_more_than_the_lot_holds(store: Store) -> None:
    # Given two lots of 10
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10), lot("l2", 10)))
    # When one debit draws 5 from l1 and 11 from l2, Then all of it is cancelled
    refused(store, debit(account, Draw("l1", 5), Draw("l2", 11)), WriteConflict.VERSION)
    # And a draw of exactly what is left goes through
    loaded = applied(store, debit(account, Draw("l1", 5), Draw("l2", 10)))
    assert {x.lot_id: x.remaining for x in loaded.lots} == {"l1": 5}


def test_a_draw_from_an_expired_lot_is_cancelled_from_the_exact_millisecond(store: Store) -> None:
    expires = NOW + DAY
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10, expires_at=expires)))
    refused(store, debit(account, Draw("l1", 1)), WriteConflict.VERSION, now=expires)
    refused(store, debit(account, Draw("l1", 1)), WriteConflict.VERSION, now=expires + 1)
    assert applied(store, debit(account, Draw("l1", 1)), now=expires - 1).lots[0].remaining == 9


def test_a_draw_from_a_lot_that_does_not_exist_is_cancelled(store: Store) -> None:
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10)))
    refused(store, debit(account, Draw("l1", 1), Draw("ghost", 1)), WriteConflict.VERSION)


def test_a_transfer_may_take_from_an_expired_lot_but_never_more_than_it_holds(store: Store) -> None:
    # Given a lot of 10 that expired yesterday
    ended = NOW - DAY
    account = applied(store, credit(Account(account_id="a"), lot("old", 10, expires_at=ended)))
    later = NOW + 30 * DAY
    # When 11 roll over, Then cancelled; When 6 roll over into a new lot, Then done
    over = Mutation(account, transfers=(Draw("old", 11),), new_lots=(lot("new", 11, expires_at=later),))
    refused(store, over, WriteConflict.VERSION)
    rolled = Mutation(account, transfers=(Draw("old", 6),), new_lots=(lot("new", 6, expires_at=later),))
    loaded = applied(store, rolled)
    assert {x.lot_id: x.remaining for x in loaded.lots} == {"new": 6, "old": 4}


def test_an_expiration_takes_exactly_what_is_left_and_only_once_expired(store: Store) -> None:
    expires = NOW + DAY
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10, expires_at=expires), lot("forever", 5)))

    def write_off(lot_id: str, amount: int) -> Mutation:
        return Mutation(account, entries=(entry(account, "expire", -amount),), expirations=(Draw(lot_id, amount),))

    refused(store, write_off("l1", 10), WriteConflict.VERSION, now=expires - 1)  # not yet
    refused(store, write_off("l1", 9), WriteConflict.VERSION, now=expires)  # not all that is left
    refused(store, write_off("l1", 11), WriteConflict.VERSION, now=expires)  # more than is left
    refused(store, write_off("forever", 5), WriteConflict.VERSION, now=NOW + 10_000 * DAY)  # never expires
    loaded = applied(store, write_off("l1", 10), now=expires)
    assert {x.lot_id: x.remaining for x in loaded.lots} == {"forever": 5}
    assert (loaded.expired, loaded.balance) == (10, 5)


def test_a_warned_flag_is_set_on_a_lot_that_exists_only(store: Store) -> None:
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10, expires_at=NOW + DAY)))
    refused(store, Mutation(account, warned=("l1", "ghost")), WriteConflict.VERSION)
    loaded = applied(store, Mutation(account, warned=("l1",)))
    assert loaded.lots[0].warned and loaded.version == 2 and loaded.seq == 1


# -- what DynamoDB refuses outright ------------------------------------------------------------


def test_a_transaction_over_the_item_limit_is_refused_and_writes_nothing(store: Store) -> None:
    # Given the store's limit n: the account item, its entry and k lots are k + 2 items
    n = store.max_transaction_items
    lots = tuple(lot(f"l{i:03d}", 1) for i in range(n - 1))
    # When n + 1 items are written, Then the store refuses for good (not a conflict, not "retry"), and writes nothing
    with pytest.raises(ChangeTooLarge):
        store.apply(credit(Account(account_id="a"), *lots), NOW)
    assert store.load_account("a") == Account(account_id="a") and all_entries(store, "a") == []
    # And exactly n items go through (the entry is one of them)
    assert len(applied(store, credit(Account(account_id="a"), *lots[: n - 2])).lots) == n - 2


def test_two_operations_on_one_item_are_refused(store: Store) -> None:
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10)))
    with pytest.raises(ChangeTooLarge):
        store.apply(Mutation(account, transfers=(Draw("l1", 1),), warned=("l1",)), NOW)
    assert store.load_account("a") == account


def test_two_records_of_one_key_in_one_transaction_are_refused(store: Store, request: Any) -> None:
    if request.node.callspec.params["store"] == "dynamodb-local":
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="DynamoDB Local runs two puts of one item (AWS and moto refuse)")
        )
    account = Account(account_id="a")
    written = entry(account, "grant", 10, key="k")
    twice = Mutation(account, entries=(written,), records=(record("k", 1), record("k", 1)), new_lots=(lot("l1", 10),))
    with pytest.raises(ChangeTooLarge):
        store.apply(twice, NOW)


def test_an_item_over_400_kb_is_refused(store: Store) -> None:
    # Given a lot whose reason alone is over 400 KB, Then the store refuses for good and writes nothing
    with pytest.raises(ChangeTooLarge):
        store.apply(credit(Account(account_id="a"), lot("big", reason="x" * 410_000)), NOW)
    assert store.load_account("a") == Account(account_id="a")
    # And one comfortably under it is written
    assert (
        len(applied(store, credit(Account(account_id="a"), lot("big", reason="x" * 400_000))).lots[0].reason) == 400_000
    )


# -- the expiry view, the index and the outbox -------------------------------------------------------


def test_the_expiry_view_is_the_account_item_with_its_live_expiring_lots(store: Store) -> None:
    # Given a full lot, a spent expiring lot and a lot that never expires
    first = applied(
        store, credit(Account(account_id="a"), full_lot(), lot("spent", 5, expires_at=NOW + DAY), lot("forever"))
    )
    applied(store, debit(first, Draw("spent", 5)))
    # Then the view's lots are the live expiring one, with the summary's fields only
    view = store.load_expiry_view("a")
    assert view is not None and view.version == 2 and view.balance == first.balance - 5
    full = full_lot()
    summary = Lot(
        lot_id=full.lot_id,
        source=full.source,
        granted=full.granted,
        remaining=full.remaining,
        created_at=full.created_at,
        expires_at=full.expires_at,
        priority=full.priority,
        price_minor=full.price_minor,
        currency=full.currency,
        package_id=full.package_id,
        plan_id=full.plan_id,
        warned=full.warned,
        expiry_grace=full.expiry_grace,
    )
    assert view.lots == (summary,)


def test_the_expiry_index_is_sparse_and_knows_when_work_is_due(store: Store) -> None:
    expires = NOW + 30 * DAY
    # Given an account with only a never-expiring lot, Then it is never due
    store.apply(credit(Account(account_id="never"), lot("l1")), NOW)
    # Given an unwarned lot expiring in 30 days, Then due a warning window before
    account = applied(store, credit(Account(account_id="soon"), lot("l1", expires_at=expires)))
    assert due_everywhere(store, expires - WEEK - 1) == []
    assert due_everywhere(store, expires - WEEK) == ["soon"]
    # When it is warned, Then due at expiry plus its grace
    account = applied(store, Mutation(account, warned=("l1",)))
    assert due_everywhere(store, expires - 1) == []
    assert due_everywhere(store, expires) == ["soon"]
    # When it is spent, Then never again
    applied(store, debit(account, Draw("l1", 1000)))
    assert due_everywhere(store, NOW + 10_000 * DAY) == []
    assert store.load_expiry_view("soon") is not None


def test_accounts_due_come_back_by_shard_soonest_first(store: Store) -> None:
    # Given three accounts of one shard, due at three instants, and one of another shard
    ids = [f"acct-{i}" for i in range(60)]
    shard = shard_of(store, ids[0])
    same = [x for x in ids if shard_of(store, x) == shard][:3]
    other = next(x for x in ids if shard_of(store, x) != shard)
    for account_id, days in zip([*same, other], [20, 10, 30, 10], strict=True):
        store.apply(credit(Account(account_id=account_id), lot("l1", expires_at=NOW + days * DAY)), NOW)
    # Then the shard gives its own due accounts, soonest first; the other shard its own
    assert [a.account_id for a in store.accounts_due(shard, NOW + 40 * DAY, page_size=2)] == [same[1], same[0], same[2]]
    assert [a.account_id for a in store.accounts_due(shard, NOW + 15 * DAY - WEEK)] == [same[1]]
    assert [a.account_id for a in store.accounts_due(shard_of(store, other), NOW + 40 * DAY)] == [other]
    # And each comes as its expiry view
    view = next(store.accounts_due(shard, NOW + 40 * DAY))
    assert view == store.load_expiry_view(same[1])


def test_the_outbox_round_trips_and_makes_the_account_due_at_once(store: Store) -> None:
    # Given events left in the outbox of an account with no expiring lot
    events = ({"type": "credits.granted", "detail": {"amount": "1.000", "tags": ["a", "b"], "n": None}},)
    account = applied(store, credit(Account(account_id="a"), lot("l1"), pending_events=events))
    # Then they read back, and the account is due whatever the time
    assert account.pending_events == events
    view = store.load_expiry_view("a")
    assert view is not None and view.pending_events == events
    assert due_everywhere(store, 0) == ["a"]
    # When a mutation leaves the outbox alone (None), Then it stays
    account = applied(store, Mutation(account, warned=("l1",)))
    assert account.pending_events == events
    # When it is emptied, Then it is gone, and the account is due no more
    account = applied(store, Mutation(account, pending_events=()))
    assert account.pending_events == () and due_everywhere(store, NOW + 10_000 * DAY) == []


def test_an_outbox_moved_to_a_spill_keeps_the_account_due_reads_back_in_order_and_goes_once(store: Store) -> None:
    # Given an account whose outbox a change moved into two spills, one after the other
    first = tuple({"type": "credits.granted", "detail": {"n": n}} for n in range(3))
    second = ({"type": "credits.expired", "detail": {"n": 3}},)
    account = applied(store, credit(Account(account_id="a"), lot("l1"), spill=Spill("outbox_1", first)))
    account = applied(store, Mutation(account, spill=Spill("outbox_2", second), pending_events=()))
    # Then the account item records them, not their events, and the account is due at once
    assert account.spilled == (SpillRef("outbox_1", 3), SpillRef("outbox_2", 1)) and account.pending_events == ()
    assert store.load_account("a") == account and due_everywhere(store, 0) == ["a"]
    view = store.load_expiry_view("a")
    assert view is not None and view.spilled == account.spilled
    # And their events read back in the order asked, oldest first
    assert store.load_spilled("a", ("outbox_1", "outbox_2")) == first + second
    # When the first is published (its item deleted), Then only the second is left
    account = applied(store, Mutation(account, unspilled=("outbox_1",)))
    assert account.spilled == (SpillRef("outbox_2", 1),) and store.load_spilled("a", ("outbox_1",)) == ()
    # And a stale change that deletes it again is refused, changing nothing
    refused(store, Mutation(replace(account, spilled=(SpillRef("outbox_1", 3),)), unspilled=("outbox_1",)), "version")
    # When the last goes, Then the account is due no more
    applied(store, Mutation(account, unspilled=("outbox_2",)))
    assert due_everywhere(store, NOW + 10_000 * DAY) == []


def test_a_change_of_one_item_alone_is_one_conditional_write_from_the_state_it_was_computed_from(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given events in an account's outbox, and another change of the account since a state
    events = ({"type": "credits.granted", "detail": {"amount": "1.000"}},)
    stale = applied(store, credit(Account(account_id="a"), lot("l1"), pending_events=events))
    account = applied(store, Mutation(stale, warned=("l1",)))
    if not isinstance(store, MemoryStore):  # the Repository sends no transaction for it
        import tollbooth.adapters.dynamodb.store as repository_module

        monkeypatch.setattr(repository_module, "TransactWrite", None)
    # Then emptying the outbox from the state before that change is refused, and changes nothing
    refused(store, Mutation(stale, pending_events=()), WriteConflict.VERSION)
    assert store.load_account("a").pending_events == events
    # And from the current state it is written
    assert applied(store, Mutation(account, pending_events=())).pending_events == ()


def test_seed_loads_accounts_as_they_stand(store: Store) -> None:
    seeded = Account(
        account_id="s", version=3, seq=2, balance=10, granted=10, lots=(lot("l1", 10, expires_at=NOW + DAY),)
    )
    store.seed([seeded], NOW)
    assert store.load_account("s") == seeded
    assert due_everywhere(store, NOW) == ["s"]


# -- the ledger, newest first ----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8])
def test_list_entries_pages_newest_first_with_no_gap_or_repeat(store: Store, limit: int) -> None:
    # Given seven entries, written five mutations (two write two entries each)
    account = Account(account_id="a")
    for batch in ([1], [1, 2], [1], [1, 2], [1]):
        written = tuple(entry(account, "grant", 1, offset=i, n=i) for i in batch)
        account = applied(store, Mutation(account, entries=written, new_lots=(lot(f"l{account.seq + 1}", len(batch)),)))
    assert account.seq == 7
    # When paging with cursors, Then each page is newest first and the pages join up
    seen: list[int] = []
    before: int | None = None
    while True:
        page = store.list_entries("a", limit, before)
        assert len(page.entries) <= limit
        seen += [e.seq for e in page.entries]
        if page.next_seq is None:
            break
        assert page.next_seq == page.entries[-1].seq
        before = page.next_seq
    assert seen == [7, 6, 5, 4, 3, 2, 1]


def usage_lines(count: int) -> list[dict[str, Any]]:
    """What a usage entry lists of ``count`` records (as ``domain.usage_charges`` writes them)."""
    return [
        {
            "event_id": f"evt-{n:04d}-{n * 7919 % 10007:05d}",
            "feature": "text_generation",
            "quantity": 500 + n,
            "dimensions": {},
            "charged": 1000 + n,
            "drew": [[0, 1000 + n]],
            "unpaid": 0,
            "catalog_version": "2026-11-01",
            "occurred_at": f"2027-01-01T00:{n % 60:02d}:00Z",
            "worker_id": f"gpu-{n % 7}",
            "resources": {"tokens_in": 100 + n, "tokens_out": 700 - n},
        }
        for n in range(count)
    ]


def test_an_entry_listing_many_records_reads_back_exactly(store: Store) -> None:
    # Given a usage entry listing 95 records (about 30 KB of JSON: stored compressed)
    account = Account(account_id="a")
    account = applied(store, Mutation(account, entries=(entry(account, "grant", 10**6),), new_lots=(lot("l1", 10**6),)))
    used = entry(account, "usage", -1000, records=usage_lines(95), draws=[{"lot_id": "l1", "amount": "95.000"}])
    applied(store, Mutation(account, entries=(used,), draws=(Draw("l1", 1000),)))
    # Then history reads it back as it was written, as does a read of the entry itself
    assert store.list_entries("a", 1).entries == [used]
    assert store.find_entry("a", used.seq) == used


def test_before_seq_means_strictly_older(store: Store) -> None:
    account = Account(account_id="a")
    for _ in range(4):
        account = applied(
            store, Mutation(account, entries=(entry(account, "grant", 1),), new_lots=(lot(f"l{account.seq}", 1),))
        )
    assert [e.seq for e in store.list_entries("a", 10, 3).entries] == [2, 1]
    assert store.list_entries("a", 2, 3).next_seq is None  # the last page reached entry 1
    assert store.list_entries("a", 1, 3).next_seq == 2
    assert store.list_entries("a", 10, 1) == store.list_entries("a", 10, 0) == store.list_entries("a", 10, -5)
    assert store.list_entries("a", 10, 1).entries == [] and store.list_entries("a", 10, 1).next_seq is None
    assert [e.seq for e in store.list_entries("a", 10, 99).entries] == [4, 3, 2, 1]
    assert store.list_entries("a", 4).next_seq is None


# -- only the twin: overlapping transactions --------------------------------------------------------------


def test_eight_threads_writing_from_one_stale_state_make_exactly_one_success() -> None:
    # Given a store where a transaction stays in flight for 50 ms
    store = MemoryStore(transaction_ms=50)
    account = applied(store, credit(Account(account_id="a"), lot("l1", 100)))
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            store.apply(debit(account, Draw("l1", 1), key=f"k{i}"), NOW)
            outcomes.append("ok")
        except WriteConflict as conflict:
            outcomes.append(conflict.reason)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then one wins; the seven others are told to reload (VERSION), as AWS does
    assert sorted(outcomes) == ["ok"] + [WriteConflict.VERSION] * 7
    assert store.load_account("a").lots[0].remaining == 99 and store.conflicts == 7


def _while_in_flight(store: MemoryStore, mutation: Mutation) -> threading.Thread:
    """Start ``mutation`` on a thread and return once its items are in flight."""
    writes = store.writes
    thread = threading.Thread(target=store.apply, args=(mutation, NOW))
    thread.start()
    while store.writes == writes:
        time.sleep(0.001)
    time.sleep(0.05)
    return thread


def test_an_overlapping_transaction_is_cancelled_even_where_a_serialized_one_would_fail_its_guard() -> None:
    # Given one account's purchase in flight with payment pi_1
    store = MemoryStore(transaction_ms=400)
    first = _while_in_flight(store, credit(Account(account_id="a"), lot("l1"), payment_reference="pi_1"))
    # When another account's purchase uses pi_1 meanwhile, Then TransactionConflict: VERSION
    late = credit(Account(account_id="b"), lot("l2"), payment_reference="pi_1")
    with pytest.raises(WriteConflict) as caught:
        store.apply(late, NOW)
    assert caught.value.reason == WriteConflict.VERSION
    # And reads meanwhile see the state before it
    assert store.load_account("a") == Account(account_id="a")
    first.join()
    # When retried after the first committed, Then the payment's own guard answers
    with pytest.raises(WriteConflict) as caught:
        store.apply(late, NOW)
    assert caught.value.reason == WriteConflict.PAYMENT_REFERENCE


def test_without_a_window_transactions_are_serialized_like_the_local_engines() -> None:
    store = MemoryStore()
    store.apply(credit(Account(account_id="a"), lot("l1"), payment_reference="pi_1"), NOW)
    with pytest.raises(WriteConflict) as caught:
        store.apply(credit(Account(account_id="b"), lot("l2"), payment_reference="pi_1"), NOW)
    assert caught.value.reason == WriteConflict.PAYMENT_REFERENCE


def test_many_threads_that_reload_and_retry_lose_nothing() -> None:
    # Given 8 threads each taking 1 credit 15 times from one account, retrying on VERSION
    store = MemoryStore(transaction_ms=0.2)
    store.apply(credit(Account(account_id="a"), lot("l1", 1000)), NOW)
    successes = [0] * 8

    def spend(i: int) -> None:
        while successes[i] < 15:
            account = store.load_account("a")
            try:
                store.apply(debit(account, Draw("l1", 1)), NOW)
                successes[i] += 1
            except WriteConflict as conflict:
                assert conflict.reason == WriteConflict.VERSION

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every debit is there once, numbered without gaps, and the counters add up
    account = store.load_account("a")
    assert (account.balance, account.lots[0].remaining, account.seq, account.version) == (880, 880, 121, 121)
    assert all_entries(store, "a") == list(range(121, 0, -1))
    assert store.writes == 121 + store.conflicts and store.conflicts > 0


# -- only the twin: sizes, throughput, copies ----------------------------------------------------


def test_a_transaction_over_4_mb_is_refused() -> None:
    # moto does not check this limit and DynamoDB Local's 10 items cannot reach it; AWS refuses
    store = MemoryStore()
    lots = tuple(lot(f"l{i}", reason="y" * 390_000) for i in range(11))
    with pytest.raises(ChangeTooLarge) as caught:
        store.apply(credit(Account(account_id="a"), *lots), NOW)
    assert isinstance(caught.value.__cause__, DynamoDBError) and caught.value.__cause__.code == "ValidationException"
    assert store.load_account("a") == Account(account_id="a")


def test_an_account_item_grown_past_400_kb_by_its_outbox_is_refused() -> None:
    store = MemoryStore()
    events = tuple({"type": "credits.granted", "detail": {"pad": "z" * 1000}} for _ in range(420))
    with pytest.raises(ChangeTooLarge):
        store.apply(credit(Account(account_id="a"), lot("l1"), pending_events=events), NOW)


def test_writes_over_a_partitions_throughput_are_throttled_within_the_second() -> None:
    # Given 12 write units a second per partition; a credit costs 6 (three items under 1 KB)
    now = [1000.0]
    store = MemoryStore(partition_write_units_per_second=12, clock=lambda: now[0])
    account = applied(store, credit(Account(account_id="a"), lot("l1")))
    account = applied(store, credit(account, lot("l2")))
    # When a third arrives in the same second, Then it is throttled and nothing is written
    with pytest.raises(StorageUnavailable) as caught:
        store.apply(credit(account, lot("l3")), NOW)
    assert isinstance(caught.value.__cause__, DynamoDBError) and caught.value.__cause__.code == "ThrottlingException"
    assert store.load_account("a") == account and store.throttled == 1
    # And another partition is not held back; the next second, this one is not either
    store.apply(credit(Account(account_id="b"), lot("l1")), NOW)
    now[0] += 1
    assert len(applied(store, credit(account, lot("l3"))).lots) == 3


def test_the_store_keeps_copies_never_the_callers_objects() -> None:
    store = MemoryStore()
    details: dict[str, Any] = {"nested": {"n": 1}}
    events: tuple[dict[str, Any], ...] = ({"detail": {"n": 1}},)
    account = Account(account_id="a")
    written = replace(entry(account, "grant", 10), details=details)
    store.apply(Mutation(account, entries=(written,), new_lots=(lot("l1", 10),), pending_events=events), NOW)
    # When the caller's objects, and what it read back, are changed
    details["nested"]["n"] = 2
    events[0]["detail"]["n"] = 2
    store.load_account("a").pending_events[0]["detail"]["n"] = 3
    store.list_entries("a", 1).entries[0].details["nested"]["n"] = 3
    # Then the store still holds what was written
    assert store.load_account("a").pending_events == ({"detail": {"n": 1}},)
    assert store.list_entries("a", 1).entries[0].details == {"nested": {"n": 1}}


def test_requests_are_counted() -> None:
    store = MemoryStore()
    store.apply(credit(Account(account_id="a"), lot("l1")), NOW)
    store.load_account("a")
    store.load_expiry_view("a")
    store.find_idempotency_record("a", "k")
    store.list_entries("a", 10)
    list(store.accounts_due(0, NOW))
    assert (store.writes, store.reads, store.conflicts) == (1, 5, 0)


def test_the_account_item_summarises_the_soonest_due_lots_and_the_sweep_reads_the_rest_when_due(store: Store) -> None:
    # Given an account holding more live expiring lots than its item summarises
    count = store.expiry.summary_lots + 4
    lots = tuple(lot(f"l{n:02d}", 10, expires_at=NOW + (n + 1) * 30 * DAY) for n in range(count))
    store.seed([Account("a", version=1, balance=10 * count, granted=10 * count, lots=lots)], NOW)
    # Then the sweep's view holds the soonest-due ones, and says when the rest are next due
    view = store.load_expiry_view("a", NOW)
    assert view is not None
    assert [x.lot_id for x in view.lots] == [x.lot_id for x in lots[: store.expiry.summary_lots]]
    first_beyond = lots[store.expiry.summary_lots].expires_at - WEEK  # its warning
    assert view.unsummarized == first_beyond
    # And once that moment has come, the view is the account in full
    full = store.load_expiry_view("a", first_beyond)
    assert full is not None and len(full.lots) == count and full.unsummarized is None
    assert store.load_account("a").unsummarized is None


def test_a_refund_raises_the_payment_refunded_total_only_from_what_it_was(store: Store) -> None:
    # Given a purchase paid by pi_1
    account = applied(store, credit(Account(account_id="a"), lot("l1", 100), payment_reference="pi_1"))
    assert store.find_payment("pi_1") == PaymentRecord("pi_1", "a", "entry-a-1", 1, 0)
    assert store.find_entry("a", 1) == store.list_entries("a", 1).entries[0]
    # When a refund takes it from 0 to 400 (minor units), clawing 40 credits back
    first = Mutation(
        account, (entry(account, "refund", -40),), transfers=(Draw("l1", 40),), refund=PaymentRefund("pi_1", 0, 400)
    )
    account = applied(store, first)
    assert store.find_payment("pi_1").refunded_minor == 400  # type: ignore[union-attr]
    assert account.clawed_back == 40 and account.lots[0].remaining == 60
    # Then a refund computed from the old total is cancelled, and nothing of it is written
    stale = Mutation(
        account, (entry(account, "refund", -10),), transfers=(Draw("l1", 10),), refund=PaymentRefund("pi_1", 0, 100)
    )
    refused(store, stale, WriteConflict.VERSION)
    assert store.find_payment("pi_1").refunded_minor == 400  # type: ignore[union-attr]
    # And one computed from the current total goes through
    later = Mutation(
        account, (entry(account, "refund", -10),), transfers=(Draw("l1", 10),), refund=PaymentRefund("pi_1", 400, 500)
    )
    assert applied(store, later).clawed_back == 50
    assert store.find_payment("pi_unknown") is None and store.find_entry("a", 99) is None


def test_a_reversal_raises_the_charge_reversed_total_only_from_what_it_was(store: Store) -> None:
    # Given a charge of 30 credits from a lot that knows the entry that granted it
    account = applied(store, credit(Account(account_id="a"), replace(lot("l1", 100), grant_seq=1)))
    assert account.lots[0].grant_seq == 1
    account = applied(store, debit(account, Draw("l1", 30)))
    assert store.reversed_of("a", "entry-a-2") == 0
    # When a reversal gives back 10 of it, from a total of 0
    first = Mutation(
        account,
        (entry(account, "reversal", 10),),
        returns=(Draw("l1", 10),),
        reversal=ChargeReversal("entry-a-2", 0, 10),
    )
    account = applied(store, first)
    assert store.reversed_of("a", "entry-a-2") == 10 and account.reversed == 10 and account.lots[0].remaining == 80
    # Then one computed from the old total is cancelled, even from the account's current version
    stale = Mutation(
        account, (entry(account, "reversal", 5),), returns=(Draw("l1", 5),), reversal=ChargeReversal("entry-a-2", 0, 5)
    )
    refused(store, stale, WriteConflict.VERSION)
    assert store.reversed_of("a", "entry-a-2") == 10
    # And one computed from the current total goes through; another charge's total is its own
    later = replace(stale, reversal=ChargeReversal("entry-a-2", 10, 15))
    assert applied(store, later).reversed == 15 and store.reversed_of("a", "entry-a-2#e1") == 0
    assert store.find_entry("a", 3, stream=None) == store.list_entries("a", 1, before_seq=4).entries[0]
    assert store.find_entry("a", 1, stream=2) is None  # a slice's stream is another partition


def test_a_hold_round_trips_and_each_change_is_guarded_by_the_status_it_leaves(store: Store) -> None:
    # Given 100 credits, of which a hold takes 30 (with the lot's terms)
    account = applied(store, credit(Account(account_id="a"), lot("l1", 100, expires_at=NOW + DAY)))
    portion = replace(account.lots[0], remaining=30)
    hold = Hold(
        "hold_1", "open", 30, (portion,), NOW, NOW + DAY, "personal", "image_generation", 3, {"tier": "hd"}, "v1"
    )
    placed = Mutation(account, (entry(account, "hold", 0),), draws=(Draw("l1", 30),), hold=HoldChange(None, hold))
    account = applied(store, placed)
    assert store.find_hold("a", "hold_1") == hold and account.holds == (HoldRef("hold_1", 30, NOW + DAY),)
    assert account.lots[0].remaining == 70 and account.held == 30
    # When it is captured from its status "open"
    captured = replace(hold, status="captured", portions=(), captured=30, closed_at=NOW)
    capture = Mutation(account, (entry(account, "capture", -30),), hold=HoldChange(hold, captured))
    account = applied(store, capture)
    assert store.find_hold("a", "hold_1") == captured and account.holds == ()
    # Then a release computed from "open", even at the account's current version, is cancelled
    released = replace(hold, status="released", portions=(), closed_at=NOW)
    stale = Mutation(
        account, (entry(account, "release", 0),), returns=(Draw("l1", 30),), hold=HoldChange(hold, released)
    )
    refused(store, stale, WriteConflict.VERSION)
    assert store.list_holds("a", 10) == [captured] and store.find_hold("a", "hold_2") is None
