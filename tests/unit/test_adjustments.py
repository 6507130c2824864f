"""Operators' corrections on the twin: adjustments add or take out credits, a void removes
what is left of a lot. Each is one entry of its own kind that names the reason and who
asked, with its event; nothing is created from nothing, and no debt is dropped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.ledger import Clock, assert_conserved, buy, grant, ledger_over, words
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.context import Caller, RequestContext
from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.service import LedgerService
from tollbooth.domain import clock as clocks
from tollbooth.domain.adjustments import Correction
from tollbooth.domain.errors import (
    GrantTooLarge,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidRequest,
    LotNotFound,
)

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
DAY = 86_400_000
WHY = Correction("duplicate grant", "support:ana")
OPS = RequestContext(Caller("service", "arn:aws:sts::123456789012:assumed-role/support-tools/s"), "req-1")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def ledger(store: MemoryStore) -> LedgerService:
    return ledger_over(store, Clock.at(NOW))


def adjust(ledger: LedgerService, credits: int, key: str, allow_arrears: bool = False) -> Outcome:
    body = {"credits": credits, "allow_arrears": allow_arrears}
    idem = Idempotency.of(key, "adjustment", "a", body)
    return ledger.adjust("a", credits * 1000, WHY, allow_arrears, idem, context=OPS)


def void(ledger: LedgerService, lot_id: str, key: str) -> Outcome:
    return ledger.void("a", lot_id, WHY, Idempotency.of(key, "void", "a", {"lot_id": lot_id}), context=OPS)


def test_a_positive_adjustment_mints_a_lot_of_its_own_and_says_who_asked(
    ledger: LedgerService, store: MemoryStore
) -> None:
    added = adjust(ledger, 25, "k1")
    assert added.status_code == 201 and added.body["credits"] == "25.000" and added.body["balance"] == "25.000"
    account = store.load_account("a")
    (lot,) = account.lots
    assert (lot.source, lot.granted, lot.expires_at, lot.reason) == ("adjustment", 25_000, None, WHY.reason)
    (entry,) = store.list_entries("a", 10).entries
    assert (entry.kind, entry.amount, entry.details["actor"], entry.details["reason"]) == (
        "adjustment",
        25_000,
        "support:ana",
        "duplicate grant",
    )
    assert entry.details["caller"]["kind"] == "service"
    (event,) = account.pending_events
    assert (event["type"], event["credits"], event["actor"]) == ("credits.adjusted", "25.000", "support:ana")
    assert (account.granted, account.adjusted) == (0, 25_000)
    assert_conserved(store, "a")


def test_a_positive_adjustment_pays_off_arrears_first(ledger: LedgerService, store: MemoryStore) -> None:
    adjust(ledger, -5, "owe", allow_arrears=True)
    assert store.load_account("a").arrears == 5_000
    adjust(ledger, 8, "fix")
    account = store.load_account("a")
    assert (account.arrears, account.balance, account.lots[0].remaining) == (0, 3_000, 3_000)
    assert_conserved(store, "a")


def test_a_negative_adjustment_takes_from_any_lot_in_burn_down_order_and_never_below_zero(
    ledger: LedgerService, store: MemoryStore
) -> None:
    grant(ledger, "a", 10, "late", expires_at=NOW + 90 * DAY)
    grant(ledger, "a", 10, "soon", expires_at=NOW + 10 * DAY)
    taken = adjust(ledger, -12, "k1")
    assert taken.body["credits"] == "-12.000" and taken.body["unpaid"] == "0.000"
    # The lot due soonest went first, then the other
    entry = store.list_entries("a", 1).entries[0]
    assert [d["amount"] for d in entry.details["draws"]] == [10_000, 2_000]
    (left,) = store.load_account("a").lots
    assert (left.expires_at, left.remaining) == (NOW + 90 * DAY, 8_000)
    with pytest.raises(InsufficientCredits, match="allow_arrears"):
        adjust(ledger, -9, "k2")
    assert store.load_account("a").balance == 8_000
    assert_conserved(store, "a")


def test_allow_arrears_records_what_the_lots_cannot_give_as_debt(ledger: LedgerService, store: MemoryStore) -> None:
    grant(ledger, "a", 3, "g1")
    taken = adjust(ledger, -5, "k1", allow_arrears=True)
    assert taken.body["unpaid"] == "2.000" and taken.body["balance"] == "-2.000"
    account = store.load_account("a")
    assert (account.arrears, account.lots, account.adjusted) == (2_000, (), -5_000)
    with pytest.raises(InsufficientCredits):
        words(ledger, "a", 1, "spend")  # the debt comes first
    assert_conserved(store, "a")


def test_an_adjustment_is_within_the_grant_cap_never_zero_and_replays_as_first(ledger: LedgerService) -> None:
    with pytest.raises(GrantTooLarge):
        adjust(ledger, 1_000_001, "huge")
    with pytest.raises(InvalidRequest):
        adjust(ledger, 0, "zero")
    first = adjust(ledger, 4, "k1")
    again = adjust(ledger, 4, "k1")
    assert again.replayed and again.body == first.body
    with pytest.raises(IdempotencyKeyReused):
        adjust(ledger, 5, "k1")


def test_a_void_removes_what_is_left_of_a_lot_once(ledger: LedgerService, store: MemoryStore) -> None:
    buy(ledger, "a", "starter", "pay-1")
    lot = next(x for x in store.load_account("a").lots if x.source == "purchase")
    words(ledger, "a", 3, "spend")
    voided = void(ledger, lot.lot_id, "v1")
    assert voided.status_code == 201 and voided.body["voided"] == f"{(lot.remaining - 3000) // 1000}.000"
    assert void(ledger, lot.lot_id, "v1").replayed
    with pytest.raises(LotNotFound):
        void(ledger, lot.lot_id, "v2")
    entry = store.list_entries("a", 1).entries[0]
    assert entry.kind == "void" and entry.details["currency"] == lot.currency and entry.details["amount_minor"] > 0
    account = store.load_account("a")
    assert lot.lot_id not in {x.lot_id for x in account.lots} and account.voided == lot.remaining - 3000
    assert account.pending_events[-1]["type"] == "lot.voided"
    assert_conserved(store, "a")


def test_a_lot_past_its_expiry_not_yet_swept_can_be_voided(store: MemoryStore) -> None:
    clock = Clock.at(NOW)
    ledger = ledger_over(store, clock)
    grant(ledger, "a", 5, "g1", expires_at=NOW + DAY)
    clock.pinned = NOW + 2 * DAY
    (lot,) = store.load_account("a").lots
    assert void(ledger, lot.lot_id, "v1").body["voided"] == "5.000"
    assert_conserved(store, "a")


def test_a_void_on_a_hot_account_takes_what_its_slices_hold_of_the_lot_too(store: MemoryStore) -> None:
    ledger = ledger_over(store, Clock.at(NOW), hot_slices=4)
    grant(ledger, "a", 100, "g1")
    ledger.consume("a", "text_generation", 500, {}, Idempotency.of("c1", "consume", "a", {}), sliced=True)
    (lot,) = store.load_account("a").lots
    assert store.load_account("a").escrow  # part of the lot sits in slices
    assert void(ledger, lot.lot_id, "v1").body["voided"] == "99.000"
    assert store.load_account("a").escrow == ()
    assert_conserved(store, "a")


def test_the_worked_example_of_docs_ledger(ledger: LedgerService, store: MemoryStore) -> None:
    grant(ledger, "a", 10, "soon", expires_at=NOW + 10 * DAY)
    grant(ledger, "a", 10, "late", expires_at=NOW + 90 * DAY)
    assert adjust(ledger, -12, "k1").body["balance"] == "8.000"
    with pytest.raises(InsufficientCredits):
        adjust(ledger, -9, "k2")
    owed = adjust(ledger, -9, "k3", allow_arrears=True)
    assert (owed.body["unpaid"], owed.body["balance"]) == ("1.000", "-1.000")
    added = adjust(ledger, 5, "k4")
    assert added.body["balance"] == "4.000" and store.list_entries("a", 1).entries[0].details["arrears_paid"] == 1000
    assert void(ledger, added.body["lot_ids"][0], "v1").body["balance"] == "0.000"
    account = store.load_account("a")
    assert (account.adjusted, account.voided, account.arrears) == (-16_000, 4_000, 0)
    assert_conserved(store, "a")
