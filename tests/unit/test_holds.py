"""Holds on the twin: credits reserved before a long job leave `available` at once, from
specific lots; a capture charges what the job used, once, and releases the rest; a
release or the sweep at expiry puts them back. Races never charge or release twice, and a
capture above the hold or after it ends charges like usage: never forgiven, never a 402."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from tests.support.ledger import CONTENTION_BUDGET, Clock, Recorder, assert_conserved, buy, grant, ledger_over
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.service import LedgerService
from tollbooth.app.sweep import ExpirySweeper
from tollbooth.domain import clock as clocks
from tollbooth.domain.errors import (
    HoldCaptured,
    HoldNotFound,
    HoldTooLong,
    IdempotencyKeyReused,
    InsufficientCredits,
    TollboothError,
    TooManyHolds,
)
from tollbooth.domain.holds import HoldRequest

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
DAY = 86_400_000


def place(
    ledger: LedgerService, key: str, credits: int | None = None, words: int | None = None, ttl: int = 900
) -> Outcome:
    if words is not None:
        asked = HoldRequest("text_generation", words, {}, None, ttl)
    else:
        asked = HoldRequest(None, None, {}, None if credits is None else credits * 1000, ttl)
    return ledger.holds.place("a", asked, Idempotency.of(key, "hold", "a", {"c": credits, "w": words, "t": ttl}))


def capture(
    ledger: LedgerService, hold_id: str, key: str, credits: int | None = None, words: int | None = None
) -> Outcome:
    idem = Idempotency.of(key, "capture", "a", {"hold_id": hold_id, "c": credits, "w": words})
    return ledger.holds.capture("a", hold_id, words, None if credits is None else credits * 1000, idem)


def release(ledger: LedgerService, hold_id: str, key: str) -> Outcome:
    return ledger.holds.release("a", hold_id, Idempotency.of(key, "release", "a", {"hold_id": hold_id}))


def available(ledger: LedgerService) -> str:
    return ledger.balance("a").available


def test_held_credits_leave_available_at_once_from_lots_in_burn_down_order(
    ledger: LedgerService, store: MemoryStore
) -> None:
    grant(ledger, "a", 5, "soon", expires_at=NOW + DAY)
    grant(ledger, "a", 20, "later", expires_at=NOW + 30 * DAY)
    placed = place(ledger, "h1", words=4000)  # 8 credits of text: 5 from the soonest lot, 3 from the next
    assert placed.status_code == 201 and placed.body["credits"] == "8.000", placed.body
    assert [lot["amount"] for lot in placed.body["lots"]] == ["5.000", "3.000"]
    balance = ledger.balance("a")
    assert (balance.available, balance.held, balance.balance) == ("17.000", "8.000", "25.000")
    assert store.load_account("a").pending_events[-1]["type"] == "hold.placed"
    (entry,) = store.list_entries("a", 1).entries
    assert (entry.kind, entry.amount, entry.details["hold_id"]) == ("hold", 0, placed.body["hold_id"])
    assert_conserved(store, "a")


def test_a_hold_the_credits_do_not_cover_is_refused_and_changes_nothing(
    ledger: LedgerService, store: MemoryStore
) -> None:
    grant(ledger, "a", 5, "fund")
    with pytest.raises(InsufficientCredits):
        place(ledger, "h1", credits=6)
    assert store.load_account("a").holds == () and available(ledger) == "5.000"


def test_a_hold_honours_the_lots_licence_restrictions(ledger: LedgerService, store: MemoryStore) -> None:
    buy(ledger, "a", "starter", "pi_1")  # 1,000 credits for the personal licence only
    commercial = HoldRequest("image_generation", 1, {"licence": "commercial"}, None, 900)
    with pytest.raises(InsufficientCredits):
        ledger.holds.place("a", commercial, Idempotency.of("h1", "hold", "a", {}))
    personal = HoldRequest("image_generation", 1, {"licence": "personal"}, None, 900)
    assert ledger.holds.place("a", personal, Idempotency.of("h2", "hold", "a", {})).status_code == 201


def test_a_capture_charges_what_the_job_used_and_releases_the_rest(ledger: LedgerService, store: MemoryStore) -> None:
    grant(ledger, "a", 20, "fund")
    hold_id = place(ledger, "h1", credits=10).body["hold_id"]
    captured = capture(ledger, hold_id, "c1", credits=4)
    assert captured.status_code == 201
    assert (captured.body["captured"], captured.body["from_hold"], captured.body["released"]) == (
        "4.000",
        "4.000",
        "6.000",
    )
    balance = ledger.balance("a")
    assert (balance.available, balance.held, balance.balance, balance.totals.consumed) == (
        "16.000",
        "0.000",
        "16.000",
        "4.000",
    )
    # A replay answers as first; another capture of the hold is refused
    assert capture(ledger, hold_id, "c1", credits=4).body == captured.body
    with pytest.raises(HoldCaptured):
        capture(ledger, hold_id, "c2", credits=1)
    with pytest.raises(HoldCaptured):
        release(ledger, hold_id, "r1")
    assert ledger.holds.listing("a").holds[0].status == "captured"
    assert_conserved(store, "a")


def test_a_capture_by_quantity_is_priced_as_the_hold_was(ledger: LedgerService, store: MemoryStore) -> None:
    grant(ledger, "a", 20, "fund")
    hold_id = place(ledger, "h1", words=5000).body["hold_id"]  # 10 credits reserved
    assert capture(ledger, hold_id, "c1", words=1500).body["captured"] == "3.000"
    assert_conserved(store, "a")


def test_a_capture_above_the_hold_charges_the_rest_and_the_unpaid_part_becomes_arrears(
    ledger: LedgerService, store: MemoryStore
) -> None:
    grant(ledger, "a", 12, "fund")
    hold_id = place(ledger, "h1", credits=10).body["hold_id"]
    captured = capture(ledger, hold_id, "c1", credits=15)  # the work was done: never a 402
    assert (captured.body["from_hold"], captured.body["unpaid"], captured.body["balance"]) == (
        "10.000",
        "3.000",
        "-3.000",
    )
    assert store.load_account("a").arrears == 3000
    assert any(e["type"] == "account.overdrawn" for e in store.load_account("a").pending_events)
    assert_conserved(store, "a")


def test_a_capture_after_release_charges_like_usage_and_is_the_holds_one_capture(
    ledger: LedgerService, store: MemoryStore
) -> None:
    grant(ledger, "a", 10, "fund")
    hold_id = place(ledger, "h1", credits=4).body["hold_id"]
    released = release(ledger, hold_id, "r1")
    assert (released.status_code, released.body["released"], released.body["available"]) == (201, "4.000", "10.000")
    again = release(ledger, hold_id, "r2")  # already released: safe to repeat
    assert (again.status_code, again.body["changed"], again.body["status"]) == (200, False, "released")
    late = capture(ledger, hold_id, "c1", credits=3)
    assert (late.body["from_hold"], late.body["captured"], late.body["balance"]) == ("0.000", "3.000", "7.000")
    with pytest.raises(HoldCaptured):
        capture(ledger, hold_id, "c2", credits=3)
    assert_conserved(store, "a")


def test_an_expired_hold_is_released_by_the_sweep_through_the_index(
    ledger: LedgerService, store: MemoryStore, clock: Clock
) -> None:
    grant(ledger, "a", 10, "fund")
    hold_id = place(ledger, "h1", credits=6, ttl=3600).body["hold_id"]
    clock.pinned = NOW + 3600 * 1000
    events = Recorder()
    report = ExpirySweeper(store, events, store.expiry, now=clock).sweep()
    assert report.expired_holds == 1 and events.ids("hold.expired")
    assert (available(ledger), ledger.balance("a").held) == ("10.000", "0.000")
    assert ledger.holds.listing("a").holds[0].status == "expired"
    assert ExpirySweeper(store, events, store.expiry, now=clock).sweep().expired_holds == 0
    # A capture after it expired charges like usage: the job was done
    assert capture(ledger, hold_id, "c1", credits=2).body["balance"] == "8.000"
    assert_conserved(store, "a")


def test_a_lot_that_expires_while_held_still_pays_a_capture_and_what_is_released_of_it_is_written_off(
    ledger: LedgerService, store: MemoryStore, clock: Clock
) -> None:
    grant(ledger, "a", 10, "soon", expires_at=NOW + DAY)
    hold_id = place(ledger, "h1", credits=10, ttl=7 * 86_400).body["hold_id"]
    clock.pinned = NOW + 2 * DAY  # the lot has expired; the hold has not
    captured = capture(ledger, hold_id, "c1", credits=4)
    assert (captured.body["from_hold"], captured.body["written_off"], captured.body["balance"]) == (
        "4.000",
        "6.000",
        "0.000",
    )
    account = store.load_account("a")
    assert (account.consumed, account.expired, account.lots) == (4000, 6000, ())
    assert [e.kind for e in store.list_entries("a", 2).entries] == ["expire", "capture"]
    assert_conserved(store, "a")


def test_open_holds_are_capped_and_a_hold_may_not_outlast_the_catalogs_maximum(
    ledger: LedgerService, store: MemoryStore
) -> None:
    grant(ledger, "a", 1000, "fund")
    limit = ledger.catalogs.in_force(NOW).max_open_holds
    for n in range(limit):
        place(ledger, f"h{n}", credits=1)
    with pytest.raises(TooManyHolds):
        place(ledger, "one-more", credits=1)
    with pytest.raises(HoldTooLong):
        place(ledger, "too-long", credits=1, ttl=ledger.catalogs.in_force(NOW).max_hold_seconds + 1)
    with pytest.raises(HoldNotFound):
        release(ledger, "hold_0000000000000000000000nope", "r1")
    with pytest.raises(IdempotencyKeyReused):
        place(ledger, "h0", credits=2)
    assert len(store.load_account("a").holds) == limit
    assert_conserved(store, "a")


def racing(store: MemoryStore, setup: LedgerService, *moves: tuple[str, str]) -> list[Exception]:
    """Run each (move, key) in its own container at once: capture, release or sweep."""
    refused: list[Exception] = []

    def run(move: str, key: str) -> None:
        ledger = LedgerService(store, setup.catalogs, now=Clock.at(NOW + 2000), write_budget=CONTENTION_BUDGET)
        try:
            hold_id = store.list_holds("a", 1)[0].hold_id
            if move == "capture":
                capture(ledger, hold_id, key, credits=3)
            elif move == "release":
                release(ledger, hold_id, key)
            else:
                ExpirySweeper(store, Recorder(), store.expiry, now=Clock.at(NOW + 2000)).sweep()
        except TollboothError as error:
            refused.append(error)

    threads = [threading.Thread(target=run, args=move) for move in moves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return refused


def test_capture_release_and_expiry_racing_never_charge_or_release_twice() -> None:
    store = MemoryStore(transaction_ms=2)
    setup = ledger_over(store, Clock.at(NOW))
    grant(setup, "a", 10, "fund")
    place(setup, "h1", credits=5, ttl=1)  # expired by the time the racers run
    refused = racing(store, setup, ("capture", "c1"), ("release", "r1"), ("sweep", "s"))
    (hold,) = store.list_holds("a", 1)
    assert hold.status == "captured" and hold.captured == 3000
    # Whichever came first, the job is charged 3 once and the rest is back once (a release
    # that lost to the capture is told so)
    assert all(isinstance(error, HoldCaptured) for error in refused)
    assert store.load_account("a").balance == 7000 and store.load_account("a").held == 0
    assert_conserved(store, "a")


def test_two_captures_of_one_hold_racing_charge_once() -> None:
    store = MemoryStore(transaction_ms=2)
    setup = ledger_over(store, Clock.at(NOW))
    grant(setup, "a", 10, "fund")
    place(setup, "h1", credits=5)
    refused = racing(store, setup, ("capture", "c1"), ("capture", "c2"))
    assert [type(error) for error in refused] == [HoldCaptured]
    assert store.load_account("a").balance == 7000
    assert_conserved(store, "a")


def test_a_hold_of_more_lots_than_one_transaction_holds_is_placed_and_given_back_through_an_intent() -> None:
    store = MemoryStore(max_transaction_items=10)  # DynamoDB Local's transactions
    ledger = ledger_over(store, Clock.at(NOW))
    for n in range(30):
        grant(ledger, "a", 1, f"g{n}", expires_at=NOW + (n + 1) * DAY)
    first = place(ledger, "h1", credits=30)  # a credit of each of 30 lots
    assert first.status_code == 201 and len(first.body["lots"]) == 30
    assert store.load_account("a").lots == () and available(ledger) == "0.000"
    assert_conserved(store, "a")
    assert release(ledger, first.body["hold_id"], "r1").body["released"] == "30.000"
    assert len(store.load_account("a").lots) == 30 and available(ledger) == "30.000"
    assert_conserved(store, "a")
    second = place(ledger, "h2", credits=30).body["hold_id"]
    captured = capture(ledger, second, "k1", credits=4)
    assert (captured.body["from_hold"], captured.body["released"]) == ("4.000", "26.000")
    assert store.load_account("a").intent is None and available(ledger) == "26.000"
    assert_conserved(store, "a")


def test_a_release_of_more_expired_lots_than_one_transaction_writes_off_leaves_them_to_the_sweep() -> None:
    store, clock = MemoryStore(max_transaction_items=10), Clock.at(NOW)
    ledger = ledger_over(store, clock)
    for n in range(12):
        grant(ledger, "a", 1, f"g{n}", expires_at=NOW + DAY)
    hold_id = place(ledger, "h1", credits=12, ttl=7 * 86_400).body["hold_id"]
    clock.pinned = NOW + 2 * DAY  # every lot expired while held
    released = release(ledger, hold_id, "r1")
    assert (released.body["released"], released.body["written_off"]) == ("12.000", "0.000")
    assert_conserved(store, "a")
    ExpirySweeper(store, Recorder(), store.expiry, now=clock).sweep()
    account = store.load_account("a")
    assert account.lots == () and account.expired == 12_000 and ledger.balance("a").balance == "0.000"
    assert_conserved(store, "a")


def test_a_hold_needing_what_the_slices_hold_recalls_them_and_is_refused_only_when_the_whole_cannot_pay(
    store: MemoryStore,
) -> None:
    ledger = ledger_over(store, Clock.at(NOW), hot_slices=4)
    grant(ledger, "a", 100, "fund")
    ledger.consume("a", "text_generation", 500, {}, Idempotency.of("c1", "consume", "a", {}), sliced=True)
    own = sum(lot.remaining for lot in store.load_account("a").lots) // 1000
    assert place(ledger, "h1", credits=own + 1).status_code == 201  # needs a slice's credits: recalled
    with pytest.raises(InsufficientCredits):
        place(ledger, "h2", credits=100)
    assert_conserved(store, "a")


def test_the_history_shows_a_holds_entries_in_credits(ledger: LedgerService) -> None:
    grant(ledger, "a", 20, "fund")
    hold_id = place(ledger, "h1", credits=10).body["hold_id"]
    capture(ledger, hold_id, "c1", credits=4)
    captured, held = ledger.ledger("a", 2, None).entries
    shown = captured.model_dump()
    assert (captured.kind, shown["captured"], shown["from_hold"], shown["released"], shown["credits"]) == (
        "capture",
        "4.000",
        "4.000",
        "6.000",
        "10.000",
    )
    assert (held.kind, held.amount, held.model_dump()["hold_id"]) == ("hold", "0.000", hold_id)


def test_a_capture_is_priced_by_the_catalog_in_force_when_the_hold_was_placed(
    ledger: LedgerService, store: MemoryStore, clock: Clock
) -> None:
    grant(ledger, "a", 100, "fund")
    hold_id = place(ledger, "h1", words=5000, ttl=7 * 86_400).body["hold_id"]  # 1 credit per 500 words
    # Then a new version doubles the price of text before the job ends
    placed_under = ledger.catalogs.in_force(NOW)
    text = placed_under.features["text_generation"]
    dearer = placed_under.model_copy(
        update={
            "version": "dearer",
            "effective_from": datetime(2027, 2, 2, tzinfo=UTC),
            "features": {
                **placed_under.features,
                "text_generation": text.model_copy(update={"credits": 2 * text.credits}),
            },
        }
    )
    ledger.catalogs = ledger.holds.catalogs = type(ledger.catalogs).of(*ledger.catalogs.versions, dearer)
    clock.pinned = NOW + 2 * DAY
    assert ledger.catalogs.in_force(clock()).version == "dearer"
    assert capture(ledger, hold_id, "c1", words=3000).body["captured"] == "6.000"  # as priced when placed
    assert_conserved(store, "a")


def test_a_requests_events_are_published_right_after_it_and_never_pile_up_on_the_account(
    store: MemoryStore, clock: Clock
) -> None:
    # Given a container that publishes, and an account placing and capturing 30 holds
    events = Recorder()
    ledger = ledger_over(store, clock, publisher=events)
    grant(ledger, "a", 100, "g1")
    for n in range(30):
        held = place(ledger, f"h{n}", credits=2)
        capture(ledger, held.body["hold_id"], f"c{n}", credits=1)
    # Then each event went out with its request, and the account item carries none of them
    assert len(events.ids("hold.placed")) == len(events.ids("hold.captured")) == 30
    assert store.load_account("a").pending_events == ()
    account_item = next(item for item in store.raw_items("ACCOUNT#a") if item["type"] == "account")
    assert "pending_events" not in account_item
    assert_conserved(store, "a")


def test_events_a_request_could_not_publish_wait_for_the_sweep_and_the_request_still_succeeds(
    store: MemoryStore, clock: Clock
) -> None:
    events = Recorder()
    events.failing = True  # EventBridge is down
    ledger = ledger_over(store, clock, publisher=events)
    grant(ledger, "a", 100, "g1")
    held = place(ledger, "h1", credits=2)
    assert held.status_code == 201
    assert [e["type"] for e in store.load_account("a").pending_events] == ["hold.placed"]
    events.failing = False
    ExpirySweeper(store, events, store.expiry, now=clock).sweep()
    assert events.ids("hold.placed") and store.load_account("a").pending_events == ()


def test_after_a_failure_to_publish_a_container_leaves_events_to_the_sweep_for_a_while(
    store: MemoryStore, clock: Clock
) -> None:
    events = Recorder()
    events.failing = True
    ledger = ledger_over(store, clock, publisher=events)
    grant(ledger, "a", 100, "g1")
    place(ledger, "h1", credits=2)
    # EventBridge is back, but this container does not try again at once: while it is
    # down, one request in a while waits out its timeouts, not every one
    events.failing = False
    place(ledger, "h2", credits=2)
    assert events.events == []
    assert [e["type"] for e in store.load_account("a").pending_events] == ["hold.placed", "hold.placed"]
