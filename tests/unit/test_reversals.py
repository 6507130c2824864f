"""Reversals on the twin: a charge (a consume, or one usage record) is given back to the lots
it drew from, with their terms and expiry, never more than it took, counting every
reversal of it. Credits whose lot has expired since are written off at once; a record's
unpaid part reduces the arrears first; nothing is minted and no debt is dropped."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from tests.support.ledger import (
    CONTENTION_BUDGET,
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
from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.ingestion import UsageIngestor
from tollbooth.app.service import LedgerService
from tollbooth.app.sweep import ExpirySweeper
from tollbooth.contracts.usage import message_body
from tollbooth.domain import clock as clocks
from tollbooth.domain import ids
from tollbooth.domain.errors import (
    EntryNotFound,
    IdempotencyKeyReused,
    NotReversible,
    ReversalTooLarge,
    TollboothError,
)
from tollbooth.domain.ledger import LedgerEntry
from tollbooth.domain.reversals import ReversalRequest

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
DAY = 86_400_000


def reverse(
    ledger: LedgerService, entry_id: str, key: str, credits: int | None = None, event_id: str | None = None
) -> Outcome:
    asked = ReversalRequest(entry_id, event_id, None if credits is None else credits * 1000, "generation failed", "w1")
    body = {"entry_id": entry_id, "event_id": event_id, "credits": credits}
    return ledger.reverse("a", asked, Idempotency.of(key, "reversal", "a", body))


def last_entry(store: MemoryStore, kind: str) -> LedgerEntry:
    return next(e for e in store.list_entries("a", 100).entries if e.kind == kind)


def test_a_reversed_consume_gives_its_credits_back_to_the_lot_it_drew_from(
    ledger: LedgerService, store: MemoryStore
) -> None:
    grant(ledger, "a", 10, "fund", expires_at=NOW + 30 * DAY)
    charge = words(ledger, "a", 4, "c1").body["entry_id"]
    done = reverse(ledger, charge, "r1")
    assert done.status_code == 201
    assert (done.body["reversed"], done.body["reversed_total"], done.body["charged"]) == ("4.000", "4.000", "4.000")
    assert done.body["balance"] == "10.000" and done.body["returned"][0]["amount"] == "4.000"
    account = store.load_account("a")
    (lot,) = account.lots
    assert (lot.remaining, lot.expires_at) == (10_000, NOW + 30 * DAY)  # the same lot, its expiry kept
    assert (account.reversed, account.consumed) == (4000, 4000)  # its own term: the charge stays on record
    entry = last_entry(store, "reversal")
    assert (entry.details["charge_entry_id"], entry.details["actor"], entry.amount) == (charge, "w1", 4000)
    (event,) = [e for e in account.pending_events if e["type"] == "charge.reversed"]
    assert (event["charge_entry_id"], event["credits"], event["usage_event_id"]) == (charge, "4.000", None)
    assert_conserved(store, "a")


def test_partial_reversals_add_up_to_the_charge_and_never_beyond_it(ledger: LedgerService, store: MemoryStore) -> None:
    grant(ledger, "a", 10, "fund")
    charge = words(ledger, "a", 4, "c1").body["entry_id"]
    assert reverse(ledger, charge, "r1", credits=1).body["reversed_total"] == "1.000"
    assert reverse(ledger, charge, "r2", credits=3).body["reversed_total"] == "4.000"
    with pytest.raises(ReversalTooLarge):
        reverse(ledger, charge, "r3", credits=1)
    # A replay answers as first; the same key with another body is refused
    assert reverse(ledger, charge, "r1", credits=1).body["reversed_total"] == "1.000"
    with pytest.raises(IdempotencyKeyReused):
        reverse(ledger, charge, "r1", credits=2)
    assert store.load_account("a").balance == 10_000 and store.reversed_of("a", charge) == 4000
    assert_conserved(store, "a")


def test_a_partial_reversal_gives_back_to_the_lot_drawn_last_first(ledger: LedgerService, store: MemoryStore) -> None:
    grant(ledger, "a", 3, "soon", expires_at=NOW + DAY)
    grant(ledger, "a", 10, "later", expires_at=NOW + 30 * DAY)
    charge = words(ledger, "a", 5, "c1").body["entry_id"]  # 3 from the soonest lot, 2 from the later one
    back = reverse(ledger, charge, "r1", credits=2)
    (returned,) = back.body["returned"]
    later = next(lot for lot in store.load_account("a").lots if lot.expires_at == NOW + 30 * DAY)
    assert (returned["lot_id"], returned["amount"], later.remaining) == (later.lot_id, "2.000", 10_000)
    assert_conserved(store, "a")


def test_credits_go_back_into_a_spent_lot_made_again_with_its_terms(ledger: LedgerService, store: MemoryStore) -> None:
    buy(ledger, "a", "starter", "pi_1")  # 1,000 credits for the personal licence, for 12 months
    (bought,) = store.load_account("a").lots
    charge = words(ledger, "a", 1000, "all").body["entry_id"]
    assert store.load_account("a").lots == ()  # the spent lot has left the store
    reverse(ledger, charge, "r1", credits=250)
    (lot,) = store.load_account("a").lots
    assert lot.lot_id == bought.lot_id and lot.remaining == 250_000
    assert (lot.granted, lot.expires_at, lot.licences, lot.price_minor, lot.source) == (
        bought.granted,
        bought.expires_at,
        bought.licences,
        bought.price_minor,
        "purchase",
    )
    assert_conserved(store, "a")


def test_credits_of_a_lot_expired_since_are_written_off_at_once(
    ledger: LedgerService, store: MemoryStore, clock: Clock
) -> None:
    grant(ledger, "a", 5, "soon", expires_at=NOW + DAY)
    charge = words(ledger, "a", 5, "c1").body["entry_id"]
    clock.pinned = NOW + 2 * DAY
    back = reverse(ledger, charge, "r1")
    assert (back.body["reversed"], back.body["written_off"], back.body["returned"]) == ("5.000", "5.000", [])
    account = store.load_account("a")
    assert (account.balance, account.reversed, account.expired, account.lots) == (0, 5000, 5000, ())
    kinds = [e.kind for e in store.list_entries("a", 2).entries]
    assert kinds == ["expire", "reversal"]
    expired = [e for e in account.pending_events if e["type"] == "credits.expired"]
    assert expired and expired[0]["event_id"].endswith(":reversal:3")  # not the sweep's id for the lot
    assert_conserved(store, "a")


def test_write_offs_that_would_not_fit_one_transaction_are_left_to_the_sweep(clock: Clock) -> None:
    # Given a consume that drew from 7 one-credit lots, on 10-item transactions, all expired since
    store = MemoryStore(max_transaction_items=10)
    ledger = ledger_over(store, clock)
    for n in range(7):
        grant(ledger, "a", 1, f"g{n}", expires_at=NOW + DAY)
    charge = words(ledger, "a", 7, "c1").body["entry_id"]
    clock.pinned = NOW + 2 * DAY
    # When it is reversed: 7 expire entries would not fit with the reversal's own items
    back = reverse(ledger, charge, "r1")
    # Then the credits go back into their lots, and the sweep writes them off
    assert (back.body["reversed"], back.body["written_off"], len(back.body["returned"])) == ("7.000", "0.000", 7)
    assert_conserved(store, "a")
    ExpirySweeper(store, Recorder(), store.expiry, now=clock).sweep()
    account = store.load_account("a")
    assert (account.balance, account.reversed, account.expired, account.lots) == (0, 7000, 7000, ())
    assert_conserved(store, "a")


def test_what_cannot_be_reversed_is_refused(ledger: LedgerService, store: MemoryStore) -> None:
    granted = grant(ledger, "a", 10, "fund").body["entry_id"]
    charge = words(ledger, "a", 2, "c1").body["entry_id"]
    reversal = reverse(ledger, charge, "r1").body["entry_id"]
    with pytest.raises(NotReversible, match="cannot itself be reversed"):
        reverse(ledger, reversal, "r2")
    with pytest.raises(NotReversible):
        reverse(ledger, granted, "r3")
    with pytest.raises(NotReversible):
        reverse(ledger, charge, "r4", event_id="e1")  # a consume has no usage records
    for unknown in ("led_nothing", f"{charge[:-1]}9", ids.entry_id(NOW, 1, 3), charge.replace("led_", "lot_")):
        with pytest.raises(EntryNotFound):
            reverse(ledger, unknown, "r5")
    assert_conserved(store, "a")


def ingest(ledger: LedgerService, *records: dict[str, object]) -> None:
    UsageIngestor(ledger, Recorder(), DeadLetterBox()).ingest([("m", message_body(list(records)))])


def test_one_usage_record_is_reversed_by_its_event_id(ledger: LedgerService, store: MemoryStore) -> None:
    grant(ledger, "a", 10, "fund")
    ingest(ledger, usage("e1", "a", 2), usage("e2", "a", 3))
    entry = last_entry(store, "usage")
    with pytest.raises(NotReversible, match="event_id"):
        reverse(ledger, entry.entry_id, "r0")
    with pytest.raises(NotReversible):
        reverse(ledger, entry.entry_id, "r1", event_id="e9")
    back = reverse(ledger, entry.entry_id, "r2", event_id="e2")
    assert (back.body["reversed"], back.body["charged"], back.body["event_id"]) == ("3.000", "3.000", "e2")
    with pytest.raises(ReversalTooLarge):  # that record is given back; the other one is its own charge
        reverse(ledger, entry.entry_id, "r3", event_id="e2")
    assert reverse(ledger, entry.entry_id, "r4", event_id="e1").body["balance"] == "10.000"
    assert_conserved(store, "a")


def test_a_record_that_went_into_arrears_reduces_them_first_and_mints_nothing(
    ledger: LedgerService, store: MemoryStore
) -> None:
    # 2 credits, and a record worth 5: 2 drawn, 3 unpaid
    grant(ledger, "a", 2, "fund")
    ingest(ledger, usage("e1", "a", 5))
    entry = last_entry(store, "usage")
    first = reverse(ledger, entry.entry_id, "r1", event_id="e1", credits=3)
    assert (first.body["arrears_reduced"], first.body["returned"], first.body["balance"]) == ("3.000", [], "0.000")
    assert store.load_account("a").arrears == 0 and store.load_account("a").lots == ()
    rest = reverse(ledger, entry.entry_id, "r2", event_id="e1")
    assert (rest.body["reversed"], rest.body["balance"]) == ("2.000", "2.000")  # back where it started
    assert_conserved(store, "a")


def test_arrears_later_credits_paid_off_come_back_as_credits(ledger: LedgerService, store: MemoryStore) -> None:
    ingest(ledger, usage("e1", "a", 4))  # nothing to pay with: 4 credits of arrears
    entry = last_entry(store, "usage")
    grant(ledger, "a", 10, "fund")  # pays the arrears off first: 6 left
    back = reverse(ledger, entry.entry_id, "r1", event_id="e1")
    assert (back.body["arrears_reduced"], back.body["balance"]) == ("0.000", "10.000")
    settled = next(lot for lot in store.load_account("a").lots if lot.source == "adjustment")
    assert (settled.remaining, settled.expires_at) == (4000, None)
    assert_conserved(store, "a")


def test_a_consume_written_by_a_slice_is_found_by_its_id_and_reversed(store: MemoryStore) -> None:
    ledger = ledger_over(store, Clock.at(NOW), hot_slices=4)
    grant(ledger, "a", 100, "fund")
    idem = Idempotency.of("c1", "consume", "a", {})
    charge = ledger.consume("a", "text_generation", 1500, {}, idem, sliced=True).body["entry_id"]
    assert ids.entry_position(charge)[1] is not None  # type: ignore[index]  # the slice's own stream
    assert reverse(ledger, charge, "r1").body["balance"] == "100.000"
    assert_conserved(store, "a")


def test_two_reversals_of_one_charge_racing_never_give_back_more_than_it_took() -> None:
    store = MemoryStore(transaction_ms=2)
    setup = ledger_over(store, Clock.at(NOW))
    grant(setup, "a", 10, "fund")
    charge = words(setup, "a", 4, "c1").body["entry_id"]
    refused: list[Exception] = []

    def run(key: str) -> None:
        ledger = LedgerService(store, setup.catalogs, now=Clock.at(NOW), write_budget=CONTENTION_BUDGET)
        try:
            reverse(ledger, charge, key, credits=3)
        except TollboothError as error:
            refused.append(error)

    threads = [threading.Thread(target=run, args=(key,)) for key in ("r1", "r2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [type(error) for error in refused] == [ReversalTooLarge]  # 3 + 3 > 4: exactly one lands
    assert store.reversed_of("a", charge) == 3000 and store.load_account("a").balance == 9000
    assert_conserved(store, "a")


def test_the_history_shows_a_reversal_and_each_usage_records_lots_in_credits(
    ledger: LedgerService, store: MemoryStore
) -> None:
    grant(ledger, "a", 10, "fund")
    ingest(ledger, usage("e1", "a", 2), usage("e2", "a", 3))
    usage_entry = last_entry(store, "usage")
    reverse(ledger, usage_entry.entry_id, "r1", event_id="e2", credits=1)
    reversal, charged = ledger.ledger("a", 2, None).entries
    shown = reversal.model_dump()
    assert (shown["charged"], shown["reversed_total"], shown["arrears_reduced"], shown["written_off"]) == (
        "3.000",
        "1.000",
        "0.000",
        "0.000",
    )
    (lot,) = store.load_account("a").lots
    records = charged.model_dump()["records"]
    assert [r["draws"] for r in records] == [
        [{"lot_id": lot.lot_id, "amount": "2.000"}],
        [{"lot_id": lot.lot_id, "amount": "3.000"}],
    ]
