"""Disputes (chargebacks) on the twin: opened freezes what is left of a payment's credits,
won frees them, lost claws them back as a full refund does. Each transition happens once;
late, repeated and out-of-order deliveries are safe."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from tests.support.ledger import CONTENTION_BUDGET, Clock, assert_conserved, buy, ledger_over, words
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.service import LedgerService
from tollbooth.domain import clock as clocks
from tollbooth.domain import ids
from tollbooth.domain.disputes import DisputeRequest
from tollbooth.domain.errors import DisputeDecided, InsufficientCredits, RefundTooLarge, TollboothError
from tollbooth.domain.holds import HoldRequest
from tollbooth.domain.refunds import RefundRequest

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
PAY = "pi_disputed"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def ledger(store: MemoryStore) -> LedgerService:
    ledger = ledger_over(store, Clock.at(NOW))
    buy(ledger, "a", "starter", PAY)
    return ledger


def dispute(ledger: LedgerService, status: str, key: str | None = None) -> Outcome:
    body = {"payment_reference": PAY, "status": status}
    idem = Idempotency.of(key or f"{status}-1", "dispute", "a", body)
    return ledger.dispute("a", PAY, DisputeRequest(status, "chargeback", "stripe-webhook"), idem)  # type: ignore[arg-type]


def test_an_opened_dispute_freezes_what_is_left_and_a_won_one_frees_it(
    ledger: LedgerService, store: MemoryStore
) -> None:
    words(ledger, "a", 100, "spend")
    before = ledger.balance("a")
    opened = dispute(ledger, "opened")
    assert opened.status_code == 201 and opened.body["changed"] and opened.body["frozen"] == before.balance
    balance = ledger.balance("a")
    assert (balance.balance, balance.available, balance.frozen) == (before.balance, "0.000", before.balance)
    with pytest.raises(InsufficientCredits):
        words(ledger, "a", 1, "spend-frozen")
    assert store.load_account("a").pending_events[-1]["type"] == "dispute.opened"
    won = dispute(ledger, "won")
    assert won.body["status"] == "won" and won.body["frozen"] == "0.000"
    assert ledger.balance("a").available == before.balance
    assert words(ledger, "a", 1, "spend-again").status_code == 200
    assert [e.kind for e in store.list_entries("a", 10).entries][:3] == ["consume", "dispute", "dispute"]
    assert_conserved(store, "a")


def test_a_lost_dispute_claws_back_like_a_full_refund_and_fills_the_refund_cap(
    ledger: LedgerService, store: MemoryStore
) -> None:
    words(ledger, "a", 100, "spend")
    dispute(ledger, "opened")
    lost = dispute(ledger, "lost")
    assert lost.status_code == 201 and (lost.body["clawed_back"], lost.body["unrecovered"]) == ("900.000", "100.000")
    assert lost.body["balance"] == "-100.000"  # what was spent is owed (the default refund policy: debt)
    account = store.load_account("a")
    assert account.lots == () and account.arrears == 100_000  # the spent 100 under the default policy, debt
    assert store.load_account("a").pending_events[-1]["type"] == "dispute.lost"
    with pytest.raises(RefundTooLarge):
        ledger.refund("a", PAY, RefundRequest(None, "late refund", "ops"), Idempotency.of("r", "refund", "a", {}))
    assert store.find_payment(PAY).dispute == "lost"  # type: ignore[union-attr]
    assert_conserved(store, "a")


def test_late_repeated_and_out_of_order_deliveries_change_nothing_more(
    ledger: LedgerService, store: MemoryStore
) -> None:
    # A decision that arrives before its opening is taken as it stands
    won = dispute(ledger, "won")
    assert won.body["changed"] and won.body["status"] == "won"
    late = dispute(ledger, "opened")
    assert late.status_code == 200 and not late.body["changed"] and late.body["status"] == "won"
    again = dispute(ledger, "won", key="won-2")
    assert not again.body["changed"]
    assert dispute(ledger, "opened").body == late.body  # a replay answers as first
    with pytest.raises(DisputeDecided):
        dispute(ledger, "lost")
    assert ledger.balance("a").frozen == "0.000"
    assert [e.kind for e in store.list_entries("a", 10).entries] == ["dispute", "purchase"]
    assert_conserved(store, "a")


def test_a_dispute_on_a_hot_account_freezes_what_its_slices_held_of_the_payment(store: MemoryStore) -> None:
    ledger = ledger_over(store, Clock.at(NOW), hot_slices=4)
    buy(ledger, "a", "starter", PAY)
    ledger.consume("a", "text_generation", 500, {}, Idempotency.of("c1", "consume", "a", {}), sliced=True)
    assert store.load_account("a").escrow
    opened = dispute(ledger, "opened")
    assert opened.body["frozen"] == ledger.balance("a").balance and store.load_account("a").escrow == ()
    with pytest.raises(InsufficientCredits):  # a slice never takes frozen credits
        ledger.consume("a", "text_generation", 500, {}, Idempotency.of("c2", "consume", "a", {}), sliced=True)
    assert_conserved(store, "a")


def test_a_dispute_racing_a_refund_of_the_same_payment_never_claws_more_than_was_paid() -> None:
    store = MemoryStore(transaction_ms=2)
    setup = ledger_over(store, Clock.at(NOW))
    buy(setup, "a", "starter", PAY)
    failures: list[Exception] = []

    def run(kind: str) -> None:
        ledger = LedgerService(store, setup.catalogs, now=Clock.at(NOW), write_budget=CONTENTION_BUDGET)
        try:
            if kind == "refund":
                ledger.refund("a", PAY, RefundRequest(None, "r", "ops"), Idempotency.of("r1", "refund", "a", {}))
            else:
                dispute(ledger, "lost")
        except (RefundTooLarge, TollboothError) as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(kind,)) for kind in ("refund", "lost")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    payment = store.find_payment(PAY)
    assert payment is not None and payment.refunded_minor == 999  # the starter package's price, once
    account = store.load_account("a")
    assert account.clawed_back == account.granted  # all of it, once: never twice
    assert all(isinstance(error, RefundTooLarge) for error in failures) and len(failures) <= 1
    assert_conserved(store, "a")


def test_credits_a_hold_took_come_back_frozen_while_the_payments_dispute_is_open(
    ledger: LedgerService, store: MemoryStore
) -> None:
    # The hold takes all of the payment's lot, so the dispute finds nothing left to freeze
    asked = HoldRequest(None, None, {}, 1_000_000, 900)
    hold_id = ledger.holds.place("a", asked, Idempotency.of("h1", "hold", "a", {})).body["hold_id"]
    dispute(ledger, "opened")
    ledger.holds.release("a", hold_id, Idempotency.of("r1", "release", "a", {}))
    balance = ledger.balance("a")
    assert (balance.available, balance.frozen) == ("0.000", "1000.000")  # back in its lot, frozen
    dispute(ledger, "won")
    assert ledger.balance("a").available == "1000.000"
    assert_conserved(store, "a")


def test_a_slice_holds_credits_of_a_disputed_payment_go_back_through_the_account_frozen(store: MemoryStore) -> None:
    ledger = ledger_over(store, Clock.at(NOW), hot_slices=4)
    buy(ledger, "a", "starter", PAY)
    ledger.consume("a", "text_generation", 500, {}, Idempotency.of("c1", "consume", "a", {}), sliced=True)
    asked = HoldRequest(None, None, {}, 5000, 900)
    hold_id = ledger.holds.place("a", asked, Idempotency.of("h1", "hold", "a", {}), sliced=True).body["hold_id"]
    assert ids.hold_slice(hold_id) is not None
    dispute(ledger, "opened")  # the slices are recalled, and the one holding the hold told
    ledger.holds.release("a", hold_id, Idempotency.of("r1", "release", "a", {}))
    balance = ledger.balance("a")
    assert (balance.available, balance.frozen, balance.held) == ("0.000", "999.000", "0.000")
    with pytest.raises(InsufficientCredits):
        ledger.consume("a", "text_generation", 500, {}, Idempotency.of("c2", "consume", "a", {}), sliced=True)
    assert_conserved(store, "a")
