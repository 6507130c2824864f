"""Holds on a busy account's escrow slices (``domain.slice_holds``), on the twin: placed,
captured and released on one slice, the account item untouched; what a slice cannot do
alone is done by the whole account; the sweep publishes a slice hold's events and expires
it through the index. Conservation holds after every step."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime

import pytest

from tests.support.ledger import Clock, Recorder, assert_conserved, grant, ledger_over
from tests.unit.test_holds import capture, place, release
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.ports import WriteConflict
from tollbooth.app.service import LedgerService
from tollbooth.app.sweep import ExpirySweeper
from tollbooth.domain import clock as clocks
from tollbooth.domain import ids
from tollbooth.domain.errors import HoldCaptured, TollboothError, TooManyHolds
from tollbooth.domain.expiry import ExpiryIndexing
from tollbooth.domain.hold_state import DueHold
from tollbooth.domain.ledger import Mutation

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
DAY = 86_400_000


def hot(store: MemoryStore, clock: Clock, credits: int = 100, expires_at: int | None = None) -> LedgerService:
    """An account whose credits sit partly in slices, as a busy account's do."""
    ledger = ledger_over(store, clock, hot_slices=4)
    grant(ledger, "a", credits, "fund", expires_at=expires_at)
    ledger.consume("a", "text_generation", 500, {}, Idempotency.of("c1", "consume", "a", {}), sliced=True)
    assert store.load_account("a").escrow
    return ledger


def test_a_busy_accounts_hold_is_placed_captured_and_released_on_a_slice_alone() -> None:
    store, clock = MemoryStore(), Clock.at(NOW)
    ledger = hot(store, clock)
    placed = place(ledger, "h1", credits=3)
    hold_id = placed.body["hold_id"]
    index = ids.hold_slice(hold_id)
    assert placed.status_code == 201 and index is not None and placed.body["available"] is None
    assert ledger.balance("a").held == "3.000"
    version = store.load_account("a").version
    captured = capture(ledger, hold_id, "k1", credits=2)
    assert (captured.body["from_hold"], captured.body["released"], captured.body["balance"]) == ("2.000", "1.000", None)
    release(ledger, place(ledger, "h2", credits=1).body["hold_id"], "r1")
    assert store.load_account("a").version == version  # the account item was not written
    kinds = [e.kind for e in store.list_entries("a", 10, stream=index).entries]
    assert kinds[:4] == ["release", "hold", "capture", "hold"]
    balance = ledger.balance("a")
    assert (balance.balance, balance.held) == ("97.000", "0.000")
    assert_conserved(store, "a")


def test_a_capture_beyond_what_its_slice_can_pay_is_charged_by_the_whole_account_then_arrears() -> None:
    store, clock = MemoryStore(), Clock.at(NOW)
    ledger = hot(store, clock, credits=10)
    hold_id = place(ledger, "h1", credits=1).body["hold_id"]
    captured = capture(ledger, hold_id, "k1", credits=12)
    assert (captured.body["captured"], captured.body["unpaid"]) == ("12.000", "3.000")
    account = store.load_account("a")
    assert account.arrears == 3000 and account.escrow == () and store.find_hold("a", hold_id).status == "captured"
    with pytest.raises(HoldCaptured):
        capture(ledger, hold_id, "k2", credits=1)
    assert_conserved(store, "a")


def test_a_recall_leaves_open_holds_on_their_slice_and_they_still_release_into_it() -> None:
    store, clock = MemoryStore(), Clock.at(NOW)
    ledger = hot(store, clock)
    hold_id = place(ledger, "h1", credits=4).body["hold_id"]
    grant(ledger, "a", 5, "more")  # any other change recalls the slices
    account = store.load_account("a")
    assert [(e.index, e.received) for e in account.escrow] == [(ids.hold_slice(hold_id), 4000)]
    assert_conserved(store, "a")
    assert release(ledger, hold_id, "r1").body["released"] == "4.000"
    assert ledger.balance("a").available == "104.000"
    assert_conserved(store, "a")


def test_the_sweep_publishes_a_slice_holds_events_and_expires_it_through_the_index() -> None:
    store, clock, published = MemoryStore(), Clock.at(NOW), Recorder()
    ledger = hot(store, clock)
    hold_id = place(ledger, "h1", credits=4, ttl=60).body["hold_id"]
    sweeper = ExpirySweeper(store, published, ExpiryIndexing(), now=clock)
    sweeper.sweep()
    assert published.ids("hold.placed") == [f"hold.placed:a:{hold_id}"]
    assert store.find_hold("a", hold_id).pending_events == ()
    clock.pinned = NOW + 61_000
    report = sweeper.sweep()
    assert report.expired_holds == 1 and published.ids("hold.expired") == [f"hold.expired:a:{hold_id}"]
    assert store.find_hold("a", hold_id).status == "expired"
    before = len(published.events)
    sweeper.sweep()  # the hold left the index: nothing more to do
    assert len(published.events) == before
    assert ledger.balance("a").held == "0.000"
    assert_conserved(store, "a")


def test_a_release_of_credits_the_sweep_has_work_on_is_written_on_the_account() -> None:
    store, clock, published = MemoryStore(), Clock.at(NOW), Recorder()
    ledger = hot(store, clock, expires_at=NOW + 2 * DAY)  # inside the warning window
    hold_id = place(ledger, "h1", credits=4).body["hold_id"]
    clock.pinned = NOW + 3 * DAY  # the lot has expired while held
    released = release(ledger, hold_id, "r1")
    assert (released.body["released"], released.body["written_off"]) == ("0.000", "4.000")
    assert ids.hold_slice(hold_id) not in {e.index for e in store.load_account("a").escrow if e.received}
    ExpirySweeper(store, published, ExpiryIndexing(), now=clock).sweep()
    assert "hold.placed" in {event["type"] for event in published.events}  # carried into the account's outbox
    assert_conserved(store, "a")


def test_each_slice_caps_its_own_open_holds() -> None:
    store, clock = MemoryStore(), Clock.at(NOW)
    ledger = hot(store, clock)
    cap = ledger.catalogs.in_force(NOW).max_open_holds
    with pytest.raises(TooManyHolds, match="escrow slice 0"):
        for n in range(cap + 1):
            ledger.hot.index = 0  # one container, on one slice
            place(ledger, f"h{n}", credits=1)
    assert len(store.load_account("a").slice(0).holds) == cap
    assert_conserved(store, "a")


@pytest.mark.parametrize("round_", range(20))
def test_a_capture_and_a_release_racing_on_a_slice_never_both_win(round_: int) -> None:
    store, clock = MemoryStore(transaction_ms=1), Clock.at(NOW)
    ledger = hot(store, clock)
    hold_id = place(ledger, f"h{round_}", credits=5).body["hold_id"]

    def run(action) -> None:  # type: ignore[no-untyped-def]
        with contextlib.suppress(TollboothError):  # the loser is told why: captured, or released
            action()

    threads = [
        threading.Thread(target=run, args=(lambda: capture(ledger, hold_id, "k", credits=5),)),
        threading.Thread(target=run, args=(lambda: release(ledger, hold_id, "r"),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    status = store.find_hold("a", hold_id).status
    assert status in ("captured", "released")
    assert ledger.balance("a").balance == ("94.000" if status == "captured" else "99.000")
    assert_conserved(store, "a")


def test_a_slice_holding_only_holds_is_due_to_the_sweep_once_per_moment_of_their_lots() -> None:
    store, clock, published = MemoryStore(ExpiryIndexing(warning_window=7 * DAY)), Clock.at(NOW), Recorder()
    ledger = hot(store, clock, expires_at=NOW + 3 * DAY)
    hold_id = place(ledger, "h1", credits=4, ttl=6 * 86_400).body["hold_id"]
    sweeper = ExpirySweeper(store, published, store.expiry, now=clock)
    sweeper.sweep()  # warns of the lot; the slice keeps only its hold, whose lot is written off on day 3
    index = ids.hold_slice(hold_id)
    assert [(e.index, e.due_at) for e in store.load_account("a").escrow] == [(index, NOW + 3 * DAY)]
    clock.pinned = NOW + 4 * DAY
    sweeper.sweep()  # that moment passed while held: the slice is due no more until the hold closes
    assert [(e.index, e.due_at) for e in store.load_account("a").escrow] == [(index, None)]
    accounts = [d for d in store.accounts_due(0, clock()) if not isinstance(d, DueHold)]
    assert all(account.account_id != "a" for account in accounts)
    clock.pinned = NOW + 6 * DAY + 1
    sweeper.sweep()  # the hold expires: its credits, of a lot expired meanwhile, are written off
    assert store.find_hold("a", hold_id).status == "expired"
    assert store.load_account("a").escrow == () and ledger.balance("a").balance == "0.000"
    assert_conserved(store, "a")


class LosesHolds(MemoryStore):
    """Loses the next ``armed`` writes of a hold on the account's own item: a busy account."""

    armed = 0

    def apply(self, mutation: Mutation, now: int) -> None:
        if self.armed and not mutation.spend and mutation.hold is not None:
            self.armed -= 1
            raise WriteConflict(WriteConflict.VERSION)
        super().apply(mutation, now)


def test_a_hold_that_loses_a_race_for_the_account_item_is_placed_on_a_slice() -> None:
    store, clock = LosesHolds(), Clock.at(NOW)
    ledger = ledger_over(store, clock, hot_slices=4)
    grant(ledger, "a", 100, "fund")
    store.armed = 1  # its first, freshly read attempt loses
    placed = place(ledger, "h1", credits=3)
    assert placed.status_code == 201 and ids.hold_slice(placed.body["hold_id"]) is not None
    assert_conserved(store, "a")
