"""Draws kept on the account item (``domain.unsettled``), on the twin, moto and DynamoDB
Local: a lot reads as if its item were written, its item is written only when something
else writes it or more than ``LIMIT`` lots have unsettled credits, and every write of a
lot's item is guarded by what the item really holds."""

from __future__ import annotations

import pytest

from tests.contract.conftest import NOW, Store, applied, credit, debit, entry, lot, refused
from tests.support.stored import Stored, stored
from tollbooth.app.ports import WriteConflict
from tollbooth.domain import unsettled
from tollbooth.domain.ledger import Account, Draw, Mutation

DAY = 86_400_000


def test_a_draw_is_kept_on_the_account_item_and_the_lot_reads_less_it(store: Store) -> None:
    # Given a lot of 10
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10, expires_at=NOW + 9 * DAY)))
    # When a consume draws 4
    loaded = applied(store, debit(account, Draw("l1", 4)))
    # Then the lot's item still holds 10, the account item 4 of them as spent
    assert stored(store, "a") == Stored({"l1": 10}, {"l1": 4})
    # And every read of the account sees the lot holding 6: in full, its own side, the sweep's view
    assert [(x.lot_id, x.remaining) for x in loaded.lots] == [("l1", 6)]
    assert [(x.lot_id, x.remaining) for x in store.load_own("a").lots] == [("l1", 6)]
    view = store.load_expiry_view("a")
    assert view is not None and [(x.lot_id, x.remaining) for x in view.lots] == [("l1", 6)]
    assert (loaded.balance, loaded.consumed) == (6, 4)


def test_a_lot_drawn_to_zero_reads_as_gone_until_its_item_is_settled(store: Store) -> None:
    # Given three lots of 10, due one after another
    lots = [lot(f"l{n}", 10, expires_at=NOW + n * DAY) for n in (1, 2, 3)]
    account = applied(store, credit(Account(account_id="a"), *lots))
    # When l1 is drawn to zero, and then l2 in part
    account = applied(store, debit(account, Draw("l1", 10)))
    account = applied(store, debit(account, Draw("l2", 3)))
    # Then l1's item still stands, but the account holds l2 and l3 only
    assert stored(store, "a") == Stored({"l1": 10, "l2": 10, "l3": 10}, {"l1": 10, "l2": 3})
    assert {x.lot_id: x.remaining for x in account.lots} == {"l2": 7, "l3": 10}
    # When a third lot gets unsettled credits, past the limit of 2
    account = applied(store, debit(account, Draw("l2", 7), Draw("l3", 1)))
    # Then the oldest is settled in the same transaction: l1's item goes with its last credit
    # (l2, drawn to zero by this very consume, waits its turn)
    assert stored(store, "a") == Stored({"l2": 10, "l3": 10}, {"l2": 10, "l3": 1})
    assert {x.lot_id: x.remaining for x in account.lots} == {"l3": 9}
    assert (account.balance, account.consumed) == (9, 21)


def test_a_settled_lot_that_still_holds_credits_keeps_them(store: Store) -> None:
    lots = [lot(f"l{n}", 10) for n in (1, 2, 3)]
    account = applied(store, credit(Account(account_id="a"), *lots))
    account = applied(store, debit(account, Draw("l1", 2)))
    account = applied(store, debit(account, Draw("l2", 2)))
    account = applied(store, debit(account, Draw("l3", 2)))
    assert stored(store, "a") == Stored({"l1": 8, "l2": 10, "l3": 10}, {"l2": 2, "l3": 2})
    assert {x.lot_id: x.remaining for x in account.lots} == {"l1": 8, "l2": 8, "l3": 8}


def test_a_write_off_takes_the_unsettled_credits_with_what_is_left_and_is_guarded_by_both(store: Store) -> None:
    # Given a lot of 10 with 4 drawn (unsettled), expiring
    expires = NOW + DAY
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10, expires_at=expires), lot("keep", 5)))
    account = applied(store, debit(account, Draw("l1", 4)))

    def write_off(amount: int) -> Mutation:
        return Mutation(account, entries=(entry(account, "expire", -amount),), expirations=(Draw("l1", amount),))

    # Then writing off more or less than the 6 it holds is cancelled
    refused(store, write_off(10), WriteConflict.VERSION, now=expires)
    refused(store, write_off(5), WriteConflict.VERSION, now=expires)
    # And writing off the 6 deletes the item and settles the 4
    loaded = applied(store, write_off(6), now=expires)
    assert stored(store, "a") == Stored({"keep": 5}, {})
    assert (loaded.balance, loaded.expired, loaded.consumed) == (5, 6, 4)


def test_a_transfer_takes_the_unsettled_credits_off_the_lots_item_too(store: Store) -> None:
    ended = NOW - DAY
    account = applied(store, credit(Account(account_id="a"), lot("old", 10, expires_at=ended + DAY * 2)))
    account = applied(store, debit(account, Draw("old", 4)))
    later = NOW + 30 * DAY
    # Believing the lot holds 10 when it holds 6: cancelled
    over = Mutation(account, transfers=(Draw("old", 7),), new_lots=(lot("new", 7, expires_at=later),))
    refused(store, over, WriteConflict.VERSION)
    rolled = applied(store, Mutation(account, transfers=(Draw("old", 5),), new_lots=(lot("new", 5, expires_at=later),)))
    assert stored(store, "a") == Stored({"new": 5, "old": 1}, {})
    assert {x.lot_id: x.remaining for x in rolled.lots} == {"new": 5, "old": 1}


def test_a_lot_made_again_over_an_item_holding_only_unsettled_credits_reads_back(store: Store) -> None:
    # Given l1 drawn to zero, its item still standing
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10), lot("l2", 10)))
    account = applied(store, debit(account, Draw("l1", 10)))
    # When a change makes l1 again with 3 credits (a recall of a slice's portion does)
    again = Mutation(account, entries=(entry(account, "grant", 3),), new_lots=(lot("l1", 3),))
    loaded = applied(store, again)
    # Then it holds 3, put over the old item, and nothing of it is unsettled
    assert stored(store, "a") == Stored({"l1": 3, "l2": 10}, {})
    assert {x.lot_id: x.remaining for x in loaded.lots} == {"l1": 3, "l2": 10}


def test_with_a_limit_of_0_every_draw_is_written_on_its_lot(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unsettled, "LIMIT", 0)
    account = applied(store, credit(Account(account_id="a"), lot("l1", 10), lot("l2", 10)))
    loaded = applied(store, debit(account, Draw("l1", 10), Draw("l2", 4)))
    assert stored(store, "a") == Stored({"l2": 6}, {})
    assert {x.lot_id: x.remaining for x in loaded.lots} == {"l2": 6}
