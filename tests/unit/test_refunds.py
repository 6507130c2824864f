"""Refunds, as a specification: money back for a payment, its credits clawed back in
proportion and cumulatively, spent credits turned into debt or absorbed per policy, and
never more refunded than was paid. On the in-memory twin."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime

import pytest

from tests.support.ledger import Clock, assert_conserved, buy, grant, ledger_over, words
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.service import LedgerService
from tollbooth.domain import clock as clocks
from tollbooth.domain.errors import (
    IdempotencyKeyReused,
    InsufficientCredits,
    PaymentNotFound,
    PaymentReferenceUsed,
    PeriodConflict,
    RefundTooLarge,
)
from tollbooth.domain.refunds import RefundRequest, owed_at

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
STANDARD = 5_500_000  # the standard package: 5,000 credits and a 500-credit bonus, for 3999 cents


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def ledger(store: MemoryStore) -> LedgerService:
    pinned = Clock()
    pinned.pinned = NOW
    return ledger_over(store, pinned)


def refund(ledger: LedgerService, key: str, amount_minor: int | None = None, account: str = "a", ref: str = "pi_1"):  # type: ignore[no-untyped-def]
    asked = RefundRequest(amount_minor, "requested by customer", "support:ana")
    body = {"payment_reference": ref, "amount_minor": amount_minor}
    return ledger.refund(account, ref, asked, Idempotency.of(key, "refund", account, body))


def test_the_clawback_is_cumulative_so_two_halves_equal_one_whole() -> None:
    # A lot of 1,001 millicredits paid 999 cents: refunds of 500 then 499 claw back all of it
    first = owed_at(1001, 500, 999)
    assert (first, owed_at(1001, 999, 999) - first) == (501, 500)
    assert owed_at(1001, 999, 999) == 1001
    assert owed_at(1001, 0, 999) == 0


def test_a_full_refund_of_an_unspent_purchase_takes_back_every_credit_it_granted(
    ledger: LedgerService, store: MemoryStore
) -> None:
    buy(ledger, "a", "standard", "pi_1")
    answered = refund(ledger, "r1")
    assert answered.status_code == 201
    assert answered.body | {"entry_id": "-"} == {
        "entry_id": "-",
        "payment_reference": "pi_1",
        "refunded_minor": 3999,
        "refunded_total_minor": 3999,
        "currency": "USD",
        "clawed_back": "5500.000",
        "unrecovered": "0.000",
        "refund_policy": "debt",
        "balance": "0.000",
    }
    account = store.load_account("a")
    assert (account.lots, account.balance, account.clawed_back) == ((), 0, STANDARD)
    assert_conserved(store, "a")


def test_two_partial_refunds_claw_back_in_proportion_and_add_up_to_the_payment(
    ledger: LedgerService, store: MemoryStore
) -> None:
    buy(ledger, "a", "standard", "pi_1")
    half = refund(ledger, "r1", 2000)
    rest = refund(ledger, "r2")  # all that is left: 1999
    # Then each lot (the bonus too) gave back its share, and together everything
    assert half.body["clawed_back"] == "2750.687" and half.body["refunded_total_minor"] == 2000
    assert rest.body["refunded_minor"] == 1999 and rest.body["clawed_back"] == "2749.313"
    assert store.load_account("a").balance == 0
    # And nothing more may be refunded
    with pytest.raises(RefundTooLarge):
        refund(ledger, "r3", 1)
    assert_conserved(store, "a")


@pytest.mark.parametrize(("policy", "arrears"), [("debt", 1_000_000), ("absorb", 0)])
def test_credits_already_spent_become_debt_or_are_absorbed_per_the_refund_policy(
    store: MemoryStore, policy: str, arrears: int
) -> None:
    pinned = Clock()
    pinned.pinned = NOW
    ledger = ledger_over(store, pinned)
    if policy == "absorb":
        catalog = ledger.catalogs.in_force(NOW)
        ledger.catalogs = type(ledger.catalogs).of(catalog.model_copy(update={"refund_policy": "absorb"}))
    buy(ledger, "a", "starter", "pi_1")  # 1,000 credits for 999 cents
    words(ledger, "a", 1000, "spend-all")
    answered = refund(ledger, "r1")
    assert (answered.body["clawed_back"], answered.body["unrecovered"]) == ("0.000", "1000.000")
    assert answered.body["refund_policy"] == policy
    account = store.load_account("a")
    assert account.arrears == arrears and account.balance == -arrears
    if policy == "debt":  # nothing is spent while in arrears; the next credits pay the debt first
        grant(ledger, "a", 5, "more")
        with pytest.raises(InsufficientCredits):
            words(ledger, "a", 1, "after")
    assert_conserved(store, "a")


def test_a_refund_replays_and_its_key_may_not_be_reused(ledger: LedgerService) -> None:
    buy(ledger, "a", "standard", "pi_1")
    first = refund(ledger, "r1", 100)
    again = refund(ledger, "r1", 100)
    assert again.replayed and again.body == first.body
    with pytest.raises(IdempotencyKeyReused):
        refund(ledger, "r1", 101)


def test_only_the_account_the_payment_granted_may_be_refunded_by_it(ledger: LedgerService) -> None:
    buy(ledger, "a", "standard", "pi_1")
    with pytest.raises(PaymentNotFound):
        refund(ledger, "r1", account="b")
    with pytest.raises(PaymentNotFound):
        refund(ledger, "r2", ref="pi_unknown")


def test_racing_refunds_of_one_payment_never_refund_more_than_it_paid(store: MemoryStore) -> None:
    # Given the twin with AWS's TransactionConflict, and 8 refunds of 60% each racing
    racing = MemoryStore(transaction_ms=1)
    pinned = Clock()
    pinned.pinned = NOW
    buy(ledger_over(racing, pinned), "a", "standard", "pi_1")
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        try:
            refund(ledger_over(racing, pinned, attempts=100, backoff=True), f"r{n}", 2400)
            outcomes.append("refunded")
        except RefundTooLarge:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one is refunded, and the payment's refunded total is its amount
    assert sorted(outcomes) == ["refunded"] + ["refused"] * 7
    assert racing.find_payment("pi_1").refunded_minor == 2400  # type: ignore[union-attr]
    assert_conserved(racing, "a")


def test_a_refund_racing_consumes_never_takes_a_credit_twice() -> None:
    racing = MemoryStore(transaction_ms=1)
    pinned = Clock()
    pinned.pinned = NOW
    buy(ledger_over(racing, pinned), "a", "starter", "pi_1")

    def spend(n: int) -> None:
        with contextlib.suppress(InsufficientCredits):  # the refund may take the credits first
            words(ledger_over(racing, pinned, attempts=100, backoff=True), "a", 100, f"w{n}")

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(6)]
    threads.append(
        threading.Thread(target=lambda: refund(ledger_over(racing, pinned, attempts=100, backoff=True), "r1"))
    )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    account = racing.load_account("a")
    # Whatever the order: the refund took back all 1,000 credits, from the lots or as debt for
    # what the consumes had already spent, and no consume spent a credit the refund took
    assert account.clawed_back == 1_000_000 and account.arrears == account.consumed
    assert_conserved(racing, "a")


def test_an_allowance_named_by_its_payment_is_refunded_by_it_and_its_rollover_is_left_alone(store: MemoryStore) -> None:
    clock = Clock.at(NOW)
    ledger = ledger_over(store, clock)
    january, february = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)
    clock.pinned = clocks.from_datetime(january) + 1
    ledger.grant_allowance("a", "pro_monthly", january, payment_reference="in_jan")
    clock.pinned = clocks.from_datetime(february) + 1
    ledger.grant_allowance("a", "pro_monthly", february, payment_reference="in_feb")  # 500 roll over
    rollover = next(lot for lot in store.load_account("a").lots if lot.source == "rollover")
    # When February's payment is refunded in half
    answered = refund(ledger, "r1", amount_minor=1000, ref="in_feb")
    # Then half of February's allowance (1999 cents for 2,000 credits) comes back, and the
    # 500 credits January paid for stay
    assert answered.body["clawed_back"] == "1000.500" and answered.body["refunded_total_minor"] == 1000
    lots = {lot.lot_id: lot.remaining for lot in store.load_account("a").lots}
    assert lots[rollover.lot_id] == rollover.remaining
    assert_conserved(store, "a")


def test_an_allowance_payment_grants_once(store: MemoryStore) -> None:
    ledger = ledger_over(store, Clock.at(clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC)) + 1))
    ledger.grant_allowance("a", "pro_monthly", datetime(2027, 2, 1, tzinfo=UTC), payment_reference="in_1")
    with pytest.raises(PaymentReferenceUsed):
        ledger.grant_allowance("b", "pro_monthly", datetime(2027, 2, 1, tzinfo=UTC), payment_reference="in_1")
    with pytest.raises(PeriodConflict):  # the same period, named by another payment
        ledger.grant_allowance("a", "pro_monthly", datetime(2027, 2, 1, tzinfo=UTC), payment_reference="in_2")
