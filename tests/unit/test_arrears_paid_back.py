"""Credits that come back pay the arrears first, as new credits do: what a released hold,
the rest of a capture or a reversal gives back goes to the debt before the lots, and only
what may still be spent pays (never an expired lot's credits, nor a disputed lot's)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.ledger import Clock, assert_conserved, buy, grant, words
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.context import Caller, RequestContext
from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.service import LedgerService
from tollbooth.domain import clock as clocks
from tollbooth.domain.adjustments import Correction
from tollbooth.domain.disputes import DisputeRequest
from tollbooth.domain.holds import HoldRequest
from tollbooth.domain.ledger import LedgerEntry
from tollbooth.domain.reversals import ReversalRequest

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
DAY = 86_400_000
OPS = RequestContext(Caller("service", "arn:aws:sts::123456789012:assumed-role/support-tools/s"), "req-1")


def hold(ledger: LedgerService, credits: int, key: str) -> str:
    asked = HoldRequest(None, None, {}, credits * 1000, 3600)
    return str(ledger.holds.place("a", asked, Idempotency.of(key, "hold", "a", {"c": credits})).body["hold_id"])


def owe(ledger: LedgerService, credits: int, key: str) -> None:
    """Take ``credits`` more than the account holds: the rest becomes arrears."""
    body = {"credits": -credits, "allow_arrears": True}
    ledger.adjust(
        "a", -credits * 1000, Correction("usage", "ops"), True, Idempotency.of(key, "adj", "a", body), context=OPS
    )


def release(ledger: LedgerService, hold_id: str, key: str) -> Outcome:
    return ledger.holds.release("a", hold_id, Idempotency.of(key, "release", "a", {"hold_id": hold_id}))


def last(store: MemoryStore, kind: str) -> LedgerEntry:
    return next(e for e in store.list_entries("a", 100).entries if e.kind == kind)


def test_a_released_hold_pays_the_arrears_before_its_credits_go_back(ledger: LedgerService, store: MemoryStore) -> None:
    # Given 10 credits, 6 of them held, and a debt of 3 beyond the other 4
    grant(ledger, "a", 10, "g1")
    held = hold(ledger, 6, "h1")
    owe(ledger, 7, "o1")
    assert store.load_account("a").arrears == 3000
    # When the hold is released
    released = release(ledger, held, "r1")
    # Then 3 of its 6 credits paid the debt, and 3 are spendable again
    assert (released.status_code, released.body["released"], released.body["arrears_paid"]) == (201, "3.000", "3.000")
    account = store.load_account("a")
    assert (account.arrears, account.available_at(NOW), account.balance) == (0, 3000, 3000)
    assert last(store, "release").details["arrears_paid"] == 3000
    assert_conserved(store, "a")


def test_the_rest_of_a_capture_pays_the_arrears(ledger: LedgerService, store: MemoryStore) -> None:
    grant(ledger, "a", 10, "g1")
    held = hold(ledger, 6, "h1")
    owe(ledger, 5, "o1")  # the 4 free credits and 1 more
    idem = Idempotency.of("c1", "capture", "a", {"hold_id": held, "c": 2})
    captured = ledger.holds.capture("a", held, None, 2000, idem)
    assert (captured.status_code, captured.body["released"], captured.body["arrears_paid"]) == (201, "3.000", "1.000")
    account = store.load_account("a")
    assert (account.arrears, account.available_at(NOW)) == (0, 3000)  # 4 released: 1 paid, 3 back
    assert last(store, "capture").details["arrears_paid"] == 1000
    assert_conserved(store, "a")


def test_a_reversal_pays_arrears_another_charge_left(ledger: LedgerService, store: MemoryStore) -> None:
    # Given a charge of 5 that was paid, and then a debt of 2
    grant(ledger, "a", 5, "g1")
    charge = words(ledger, "a", 5, "c1").body["entry_id"]
    owe(ledger, 2, "o1")
    # When the charge is reversed
    asked = ReversalRequest(charge, None, None, "generation failed", "w1")
    reversed_ = ledger.reverse("a", asked, Idempotency.of("r1", "reversal", "a", {"e": charge}))
    assert (reversed_.status_code, reversed_.body["arrears_paid"], reversed_.body["arrears_reduced"]) == (
        201,
        "2.000",
        "0.000",
    )
    # Then its 5 credits pay the 2 owed first
    account = store.load_account("a")
    assert (account.arrears, account.available_at(NOW), account.balance) == (0, 3000, 3000)
    assert last(store, "reversal").details["arrears_paid"] == 2000
    assert_conserved(store, "a")


def test_expired_credits_never_pay_the_arrears(ledger: LedgerService, store: MemoryStore, clock: Clock) -> None:
    # Given a hold on a lot that expires while held, and a debt
    grant(ledger, "a", 6, "g1", expires_at=NOW + DAY)
    held = hold(ledger, 6, "h1")
    owe(ledger, 2, "o1")
    clock.pinned = NOW + 2 * DAY
    # When the hold is released after the lot's expiry
    release(ledger, held, "r1")
    # Then its credits are written off, and the debt stands
    account = store.load_account("a")
    assert (account.arrears, account.expired) == (2000, 6000)
    assert "arrears_paid" not in last(store, "release").details
    assert_conserved(store, "a")


def test_a_disputed_lots_credits_never_pay_the_arrears(ledger: LedgerService, store: MemoryStore) -> None:
    # Given a purchase under an open dispute, a hold on its credits, and a debt
    buy(ledger, "a", "starter", "pi_1")
    held = hold(ledger, 5, "h1")
    opened = DisputeRequest("opened", "chargeback", "stripe-webhook")
    ledger.dispute("a", "pi_1", opened, Idempotency.of("d1", "dispute", "a", {"s": "opened"}))
    owe(ledger, 1, "o1")
    arrears = store.load_account("a").arrears
    # When the hold is released, Then its credits go back frozen and pay nothing
    release(ledger, held, "r1")
    assert store.load_account("a").arrears == arrears
    assert_conserved(store, "a")
