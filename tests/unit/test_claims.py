"""Claims, as a specification: credits that leave a lot before a refund of its payment (or
a void of it) and come back after it (a hold released, captured below what it holds, or
expired; a charge reversed) go to what the refund could not take, or the void removed.
No credit of a refunded payment or a voided lot becomes spendable again, and a debt is
paid, never forgiven twice. On the in-memory twin."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.ledger import Clock, Recorder, assert_conserved, buy, grant, ledger_over, words
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.service import LedgerService
from tollbooth.domain import clock as clocks
from tollbooth.domain import ids
from tollbooth.domain.adjustments import Correction
from tollbooth.domain.holds import HoldRequest
from tollbooth.domain.refunds import RefundRequest
from tollbooth.domain.reversals import ReversalRequest

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
DAY = 86_400_000


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def over(store: MemoryStore, policy: str = "debt", **options) -> LedgerService:  # type: ignore[no-untyped-def]
    ledger = ledger_over(store, Clock.at(NOW), **options)
    if policy == "absorb":
        catalog = ledger.catalogs.in_force(NOW)
        ledger.catalogs = type(ledger.catalogs).of(catalog.model_copy(update={"refund_policy": "absorb"}))
    return ledger


def hold(ledger: LedgerService, credits: int, key: str = "h1", **options) -> str:  # type: ignore[no-untyped-def]
    asked = HoldRequest(None, None, {}, credits * 1000, 900)
    return str(ledger.holds.place("a", asked, Idempotency.of(key, "hold", "a", {}), **options).body["hold_id"])


def release(ledger: LedgerService, hold_id: str) -> None:
    ledger.holds.release("a", hold_id, Idempotency.of(f"rel-{hold_id}", "release", "a", {}))


def refund(ledger: LedgerService, amount_minor: int | None = None, key: str = "r1"):  # type: ignore[no-untyped-def]
    asked = RefundRequest(amount_minor, "requested by customer", "support:ana")
    return ledger.refund("a", "pi_1", asked, Idempotency.of(key, "refund", "a", {"a": amount_minor}))


def test_a_held_credit_counted_as_debt_by_a_refund_pays_that_debt_when_the_hold_is_released(
    store: MemoryStore,
) -> None:
    ledger = over(store)
    buy(ledger, "a", "standard", "pi_1")  # 5,500 credits
    held = hold(ledger, 300)
    assert refund(ledger).body["unrecovered"] == "300.000"  # held, so counted as spent: debt
    assert store.load_account("a").arrears == 300_000
    release(ledger, held)
    account = store.load_account("a")
    assert (account.arrears, account.balance, account.lots) == (0, 0, ())  # the debt paid, nothing back
    assert account.clawing == ()  # the claim took all it was owed
    last = ledger.ledger("a", 10, None).entries[0]  # newest first
    assert (last.kind, last.amount, last.claim, last.arrears_reduced) == ("refund", "0.000", "debt", "300.000")
    assert [draw.amount for draw in last.draws or []] == ["300.000"]
    assert_conserved(store, "a")


def test_an_absorbed_refund_takes_back_what_a_hold_gives_back_and_says_so(store: MemoryStore) -> None:
    recorder = Recorder()
    ledger = over(store, "absorb", publisher=recorder)
    buy(ledger, "a", "standard", "pi_1")
    held = hold(ledger, 300)
    refund(ledger)  # 300 written off as the seller's loss
    release(ledger, held)
    account = store.load_account("a")
    assert (account.balance, account.arrears, account.lots, account.clawed_back) == (0, 0, (), 5_500_000)
    assert ledger.balance("a").available == "0.000"
    clawed = [e for e in recorder.events if e["type"] == "credits.clawed_back"]
    assert [(e["clawed_back"], e["unrecovered"]) for e in clawed] == [("5200.000", "300.000"), ("300.000", "0.000")]
    assert len({e["event_id"] for e in clawed}) == 2
    assert_conserved(store, "a")


def test_a_debt_paid_by_later_credits_leaves_what_comes_back_to_the_account(store: MemoryStore) -> None:
    ledger = over(store)
    buy(ledger, "a", "standard", "pi_1")
    held = hold(ledger, 300)
    refund(ledger)
    grant(ledger, "a", 500, "g1")  # pays the 300 of debt first: 200 left
    assert ledger.balance("a").available == "200.000"
    release(ledger, held)  # the debt is paid: the 300 are the account's
    assert ledger.balance("a").available == "500.000"
    account = store.load_account("a")
    assert (account.arrears, account.clawing) == (0, ())  # nothing owed: the claim ended
    assert_conserved(store, "a")


def test_a_partial_refund_claims_only_its_share_of_what_comes_back(store: MemoryStore) -> None:
    ledger = over(store)
    buy(ledger, "a", "starter", "pi_1")  # 1,000 credits for 999 cents
    held = hold(ledger, 600)
    # Half the money back (500 of 999 cents) owes 500.5 of the lot's 1,000 credits: it takes
    # the 400 left, and 100.5 go unrecovered (debt).
    answered = refund(ledger, 500)
    assert (answered.body["clawed_back"], answered.body["unrecovered"]) == ("400.000", "100.500")
    release(ledger, held)  # 100.5 of the 600 pay the debt; the rest come back: paid for, not used
    account = store.load_account("a")
    assert (account.arrears, account.balance, ledger.balance("a").available) == (0, 499_500, "499.500")
    assert_conserved(store, "a")


def test_capturing_below_a_hold_after_a_refund_releases_the_rest_to_the_claim(store: MemoryStore) -> None:
    ledger = over(store, "absorb")
    buy(ledger, "a", "starter", "pi_1")
    held = hold(ledger, 300)
    refund(ledger)
    captured = ledger.holds.capture("a", held, None, 100_000, Idempotency.of("cap", "capture", "a", {}))
    assert captured.status_code == 201
    account = store.load_account("a")
    assert (account.balance, account.lots, account.consumed) == (0, (), 100_000)
    assert_conserved(store, "a")


def test_a_reversed_charge_of_a_refunded_payment_shrinks_the_loss_instead_of_minting_credits(
    store: MemoryStore,
) -> None:
    ledger = over(store, "absorb")
    buy(ledger, "a", "starter", "pi_1")
    charge = words(ledger, "a", 200, "c1").body["entry_id"]
    refund(ledger)  # 800 taken, the 200 spent absorbed
    asked = ReversalRequest(charge, None, None, "the generation failed", "support:ana")
    ledger.reverse("a", asked, Idempotency.of("rev", "reversal", "a", {}))
    account = store.load_account("a")
    assert (account.balance, account.lots, account.reversed, account.clawed_back) == (0, (), 200_000, 1_000_000)
    assert_conserved(store, "a")


def test_credits_that_come_back_to_a_voided_lot_are_removed_too(store: MemoryStore) -> None:
    recorder = Recorder()
    ledger = over(store, publisher=recorder)
    lot_id = grant(ledger, "a", 50, "g1").body["lots"][0]["lot_id"]
    held = hold(ledger, 20)
    ledger.void("a", lot_id, Correction("granted by mistake", "support:ana"), Idempotency.of("v", "void", "a", {}))
    release(ledger, held)
    account = store.load_account("a")
    assert (account.balance, account.lots, account.voided) == (0, (), 50_000)
    voided = [e for e in recorder.events if e["type"] == "lot.voided"]
    assert [e["amount"] for e in voided] == ["30.000", "20.000"]
    assert len({e["event_id"] for e in voided}) == 2
    assert_conserved(store, "a")


def test_a_slice_hold_of_a_refunded_payment_goes_back_through_the_account_to_the_claim(store: MemoryStore) -> None:
    ledger = over(store, "absorb", hot_slices=4)
    buy(ledger, "a", "starter", "pi_1")
    ledger.consume("a", "text_generation", 500, {}, Idempotency.of("c1", "consume", "a", {}), sliced=True)
    held = hold(ledger, 5, sliced=True)
    assert ids.hold_slice(held) is not None
    refund(ledger)  # the slices are recalled, and the one holding the hold told of the claim
    release(ledger, held)
    account = store.load_account("a")
    assert (account.balance, account.lots) == (0, ())
    assert ledger.balance("a").available == "0.000"
    assert_conserved(store, "a")


def test_a_claim_ends_with_its_lot_and_what_comes_back_after_is_written_off(store: MemoryStore) -> None:
    clock = Clock.at(NOW)
    ledger = ledger_over(store, clock)
    grant(ledger, "a", 50, "g1", expires_at=NOW + DAY)
    asked = HoldRequest(None, None, {}, 20_000, 7 * 24 * 3600)
    held = str(ledger.holds.place("a", asked, Idempotency.of("h", "hold", "a", {})).body["hold_id"])
    lot_id = store.load_account("a").lots[0].lot_id
    ledger.void("a", lot_id, Correction("granted by mistake", "support:ana"), Idempotency.of("v", "void", "a", {}))
    clock.pinned = NOW + 2 * DAY  # the lot has expired: what its hold gives back is written off
    release(ledger, held)
    account = store.load_account("a")
    assert (account.balance, account.lots, account.voided, account.expired) == (0, (), 30_000, 20_000)
    assert account.holds == () and account.clawing == ()
    assert_conserved(store, "a")
