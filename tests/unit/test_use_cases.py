"""The use cases at unit speed, on the in-memory twin of the store: purchase, grant, allowance
and rollover, consume, arrears, usage batching, the sweep, replays and the write loop's rules.
The twin keeps DynamoDB's guards, so what passes here is what the store contract promises."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.ledger import (
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
from tollbooth.adapters.memory_items import item_size
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.ingestion import UsageIngestor
from tollbooth.app.ports import WriteConflict
from tollbooth.app.service import LedgerService
from tollbooth.app.sweep import ExpirySweeper
from tollbooth.app.writes import Writes
from tollbooth.contracts.usage import message_body
from tollbooth.domain import clock as clocks
from tollbooth.domain.catalog import load_history
from tollbooth.domain.errors import (
    ConcurrentUpdate,
    IdempotencyKeyReused,
    InsufficientCredits,
    StorageUnavailable,
    StoreBusy,
)
from tollbooth.domain.expiry import ExpiryIndexing
from tollbooth.domain.holds import HoldRequest
from tollbooth.domain.ledger import Account, Lot, Mutation

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
DAY = 86_400_000
INDEXING = ExpiryIndexing(warning_window=7 * DAY, shards=2)


class AlwaysBusy(MemoryStore):
    """Every write loses the race to another writer."""

    def apply(self, mutation: Mutation, now: int) -> None:
        self.writes += 1
        raise WriteConflict(WriteConflict.VERSION)


@pytest.fixture
def clock() -> Clock:
    return Clock.at(NOW)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(expiry=INDEXING)


@pytest.fixture
def ledger(store: MemoryStore, clock: Clock) -> LedgerService:
    return ledger_over(store, clock)


def test_a_purchase_grants_the_package_and_its_bonus_and_consumes_draw_in_burn_down_order(
    ledger: LedgerService, store: MemoryStore
) -> None:
    # Given a purchase of the standard package (credits plus a bonus lot)
    bought = buy(ledger, "a", "standard", "pi_1")
    sources = sorted(lot["source"] for lot in bought.body["lots"])
    assert bought.status_code == 201 and sources == ["bonus", "purchase"]
    # When 10 credits are consumed, Then they come from the lot that expires first
    used = words(ledger, "a", 10, "job-1")
    assert used.status_code == 200 and used.body["charged"] == "10.000"
    (entry,) = [e for e in store.list_entries("a", 10).entries if e.kind == "consume"]
    first = min(store.load_account("a").lots, key=lambda lot: (lot.expires_at or 0, lot.priority))
    assert [d["lot_id"] for d in entry.details["draws"]] == [first.lot_id]
    assert_conserved(store, "a")


def test_a_replay_gets_the_first_answer_and_another_body_under_the_key_is_refused(ledger: LedgerService) -> None:
    grant(ledger, "a", 100, "fund")
    first = words(ledger, "a", 3, "k")
    again = words(ledger, "a", 3, "k")
    assert again.replayed and again.body == first.body
    with pytest.raises(IdempotencyKeyReused):
        words(ledger, "a", 3, "k", body_extra=1)


def test_a_refused_consume_writes_nothing_and_its_key_may_be_used_once_funded(
    ledger: LedgerService, store: MemoryStore
) -> None:
    with pytest.raises(InsufficientCredits):
        words(ledger, "a", 5, "k")
    assert store.load_account("a").version == 0
    grant(ledger, "a", 5, "fund")
    assert words(ledger, "a", 5, "k").status_code == 200


def test_a_plan_grants_each_period_once_and_rolls_what_is_left_into_the_next(
    ledger: LedgerService, store: MemoryStore, clock: Clock
) -> None:
    plans = load_history().in_force(NOW).plans
    plan_id, plan = next((name, p) for name, p in plans.items() if p.rollover_cap)
    start = datetime(2027, 2, 1, tzinfo=UTC)
    first = ledger.grant_allowance("a", plan_id, start)
    assert ledger.grant_allowance("a", plan_id, start).replayed
    # When the next period starts with the first allowance untouched
    clock.pinned = clocks.add_months(NOW, plan.months) + 1
    second = ledger.grant_allowance(
        "a", plan_id, datetime.fromtimestamp(clocks.add_months(NOW, plan.months) / 1000, UTC)
    )
    # Then up to the cap moves into a rollover lot, and the moved credits are not granted twice
    rolled = [lot for lot in second.body["lots"] if lot["source"] == "rollover"]
    assert first.status_code == second.status_code == 201
    assert [lot["granted"] for lot in rolled] == [f"{min(plan.rollover_cap, plan.allowance) / 1000:.3f}"]
    assert store.load_account("a").granted == 2 * plan.allowance
    assert_conserved(store, "a")


def test_usage_beyond_the_credits_becomes_arrears_that_the_next_purchase_pays_first(
    ledger: LedgerService, store: MemoryStore
) -> None:
    # Given 2 credits, and workers that already did 5 credits of work
    grant(ledger, "a", 2, "fund")
    ingestor = UsageIngestor(ledger, Recorder(), DeadLetterBox())
    retry, report = ingestor.ingest([("m1", message_body([usage(f"e{i}", "a") for i in range(5)]))])
    # Then all of it is charged in one write, and 3 credits are arrears
    account = store.load_account("a")
    assert retry == {} and report.charged == 5 and (account.arrears, account.balance) == (3000, -3000)
    # And the next purchase pays the arrears off before anything else
    bought = buy(ledger, "a", "standard", "pi_1")
    assert store.load_account("a").arrears == 0
    assert [e.details.get("arrears_paid") for e in store.list_entries("a", 1).entries] == [3000]
    assert bought.status_code == 201
    assert_conserved(store, "a")


def test_ten_usage_records_of_one_account_cost_one_write(ledger: LedgerService, store: MemoryStore) -> None:
    grant(ledger, "a", 100, "fund")
    writes = store.writes
    UsageIngestor(ledger, Recorder(), DeadLetterBox()).ingest(
        [("m", message_body([usage(f"e{i}", "a") for i in range(10)]))]
    )
    assert store.writes - writes == 1


def test_the_sweep_writes_off_a_due_lot_once_and_publishes_after_commit(
    ledger: LedgerService, store: MemoryStore, clock: Clock
) -> None:
    # Given a lot that expires in a day, and the sweep running after that, twice
    grant(ledger, "a", 7, "fund", expires_at=NOW + DAY)
    events = Recorder()
    clock.pinned = NOW + DAY
    first = ExpirySweeper(store, events, INDEXING, now=clock).sweep()
    again = ExpirySweeper(store, events, INDEXING, now=clock).sweep()
    # Then it is written off once, its event is published, and the account leaves the index
    assert (first.expired_lots, first.expired_credits, again.expired_lots) == (1, 7000, 0)
    assert events.ids("credits.expired") and store.load_account("a").expired == 7000
    assert list(store.accounts_due(0, NOW + 10 * DAY)) == list(store.accounts_due(1, NOW + 10 * DAY)) == []
    assert_conserved(store, "a")


def test_contention_is_retried_a_bounded_number_of_times_then_a_clear_error(clock: Clock) -> None:
    # Given a store where every write loses the race, and an account the service remembers nothing of
    store = AlwaysBusy()
    ledger = ledger_over(MemoryStore(), clock)
    grant(ledger, "a", 10, "fund")
    busy = ledger_over(store, clock, attempts=4)
    # When a consume is attempted (no credits in this store: a refusal reads fresh), Then 402 is never
    # guessed from a remembered state, and a write that always loses gives up after 4 tries
    with pytest.raises(InsufficientCredits):
        words(busy, "a", 1, "k")
    store.seed([ledger.repository.load_account("a")], NOW)
    with pytest.raises(ConcurrentUpdate):
        words(busy, "a", 1, "k2")
    assert store.writes == 4


def test_a_busy_account_is_retried_within_a_time_budget_not_for_ever(clock: Clock) -> None:
    # Given a store where every write loses the race, and a clock where each look takes a second
    store = AlwaysBusy()
    ledger = ledger_over(MemoryStore(), clock)
    grant(ledger, "a", 10, "fund")
    store.seed([ledger.repository.load_account("a")], NOW)
    ticks = iter(range(1000))
    busy = ledger_over(store, clock, attempts=40)
    busy.writes = Writes(
        store, max_attempts=40, now=clock, sleep=lambda _: None, budget=3.0, monotonic=lambda: next(ticks)
    )
    # When a consume is attempted, Then it gives up with 409 once the 3 s budget is spent
    with pytest.raises(ConcurrentUpdate):
        words(busy, "a", 1, "k")
    assert store.writes == 4


def test_overlapping_writes_on_one_account_conserve_credits_on_a_store_that_cancels_them(clock: Clock) -> None:
    # Given the twin with AWS's TransactionConflict: overlapping transactions on one item are cancelled
    import threading

    store = MemoryStore(expiry=INDEXING, transaction_ms=1)
    ledger = ledger_over(store, clock, attempts=50)
    grant(ledger, "a", 40, "fund")
    results: list[str] = []

    def spend(n: int) -> None:
        try:
            words(ledger_over(store, clock, attempts=50), "a", 1, f"job-{n}")
            results.append("ok")
        except (ConcurrentUpdate, InsufficientCredits) as error:
            results.append(error.code)

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then no credit is created or lost, whatever each request was told
    account = store.load_account("a")
    assert account.consumed == 1000 * results.count("ok") and store.conflicts > 0
    assert_conserved(store, "a")


class CrashesAfterCommit(MemoryStore):
    """The writer dies after a debit's first transaction: the draws its intent owes stay owed."""

    crashing = True

    def apply(self, mutation: Mutation, now: int) -> None:
        if self.crashing and mutation.account.intent is not None:
            raise StorageUnavailable("the writer's container died")
        super().apply(mutation, now)


def one_credit_lots(ledger: LedgerService, account: str, count: int) -> None:
    for n in range(count):
        grant(ledger, account, 1, f"fund-{n}", expires_at=NOW + (n + 1) * DAY)


def test_a_debit_across_more_lots_than_one_transaction_holds_succeeds_exactly(clock: Clock) -> None:
    # Given 30 one-credit lots on a store that takes 10 items per transaction (DynamoDB Local's)
    store = MemoryStore(expiry=INDEXING, max_transaction_items=10)
    ledger = ledger_over(store, clock)
    one_credit_lots(ledger, "a", 30)
    writes = store.writes
    # When one consume spends all 30 credits
    used = words(ledger, "a", 30, "big")
    # Then it succeeds, draws every lot once in burn-down order, and leaves nothing owed
    assert used.status_code == 200 and used.body["charged"] == "30.000"
    draws = next(e for e in store.list_entries("a", 100).entries if e.kind == "consume").details["draws"]
    assert [d["amount"] for d in draws] == [1000] * 30 and len({d["lot_id"] for d in draws}) == 30
    account = store.load_account("a")
    assert account.intent is None and account.lots == () and account.balance == 0
    # And it took the first transaction (6 draws beside the account, key, entry and intent) and three of 8
    assert store.writes - writes == 4
    assert words(ledger, "a", 30, "big").body == used.body
    assert_conserved(store, "a")


def test_draws_a_crashed_writer_owes_are_applied_before_anything_else(clock: Clock) -> None:
    # Given a debit across 30 lots whose writer died after the first transaction
    store = CrashesAfterCommit(expiry=INDEXING, max_transaction_items=10)
    ledger = ledger_over(store, clock)
    one_credit_lots(ledger, "a", 31)
    used = words(ledger, "a", 30, "big")
    # Then the client was answered (the debit is committed), and the balance already shows it
    assert used.status_code == 200
    owed = store.load_account("a").intent
    assert owed is not None and len(owed.draws) == 24 and store.load_account("a").balance == 1000
    # When the next writer comes, Then it finishes the intent first: the owed lots are not spent twice
    store.crashing = False
    with pytest.raises(InsufficientCredits):
        words(ledger, "a", 2, "more")
    assert store.load_account("a").intent is None
    # And the one credit left is spent
    assert words(ledger, "a", 1, "last").status_code == 200
    account = store.load_account("a")
    assert account.intent is None and account.lots == () and account.balance == 0
    assert_conserved(store, "a")


class RollForwardThrottled(MemoryStore):
    """The first roll-forward of an intent is throttled: the debit is committed, its draws owed."""

    throttling = True

    def apply(self, mutation: Mutation, now: int) -> None:
        if self.throttling and mutation.account.intent is not None:
            self.throttling = False
            raise StoreBusy("the partition is busy")
        super().apply(mutation, now)


def test_a_change_whose_intent_is_left_owed_is_followed_from_a_fresh_read(clock: Clock) -> None:
    # Given a container that publishes a request's events right after it, on a store of
    # 10-item transactions whose first roll-forward is throttled
    store = RollForwardThrottled(expiry=INDEXING, max_transaction_items=10)
    events = Recorder()
    ledger = ledger_over(store, clock, publisher=events)
    for n in range(12):
        grant(ledger, "a", 10, f"g{n}", expires_at=NOW + (n + 1) * DAY)
    # When a hold takes 115 credits of the 12 lots (its draws owed past the first transaction)
    asked = HoldRequest(None, None, {}, 115_000, 3600)
    assert ledger.holds.place("a", asked, Idempotency.of("h1", "hold", "a", {})).status_code == 201
    # Then its event went out from the account read afresh, which rolled the intent forward
    # first (the planned after-state describes steps not yet written, at the first one's version)
    account = store.load_account("a")
    assert account.intent is None and len(events.ids("hold.placed")) == 1
    assert_conserved(store, "a")
    # And the account takes the next change
    assert words(ledger, "a", 5, "after").status_code == 200
    assert_conserved(store, "a")


def test_the_sweep_finishes_an_intent_nobody_else_comes_for(clock: Clock) -> None:
    store = CrashesAfterCommit(expiry=INDEXING, max_transaction_items=10)
    ledger = ledger_over(store, clock)
    one_credit_lots(ledger, "a", 20)
    words(ledger, "a", 20, "big")
    store.crashing = False
    # When the sweep runs (the account is due at once while it owes draws)
    ExpirySweeper(store, Recorder(), INDEXING, now=clock).sweep()
    # Then the intent is gone, every lot with it, and the account leaves the index
    account = store.load_account("a")
    assert account.intent is None and account.lots == ()
    assert list(store.accounts_due(0, NOW)) == list(store.accounts_due(1, NOW)) == []
    assert_conserved(store, "a")


def test_the_sweep_expires_lots_beyond_the_summary_when_their_time_comes(clock: Clock) -> None:
    # Given ten lots expiring a day apart, on an account item that summarises three
    indexing = ExpiryIndexing(warning_window=7 * DAY, shards=2, summary_lots=3)
    store = MemoryStore(expiry=indexing)
    ledger = ledger_over(store, clock)
    one_credit_lots(ledger, "a", 10)
    events = Recorder()
    # When the sweep runs on day 4, and again on day 11
    clock.pinned = NOW + 4 * DAY
    early = ExpirySweeper(store, events, indexing, now=clock).sweep()
    clock.pinned = NOW + 11 * DAY
    late = ExpirySweeper(store, events, indexing, now=clock).sweep()
    # Then each lot is written off once, when it is due, and each lot the first run saw
    # still spendable was warned (the six expiring within the week)
    assert (early.expired_lots, late.expired_lots) == (4, 6)
    assert len(events.ids("credits.expired")) == 10 and len(events.ids("credits.expiring")) == 6
    assert store.load_account("a").lots == () and store.load_account("a").expired == 10_000
    assert list(store.accounts_due(0, NOW + 99 * DAY)) == list(store.accounts_due(1, NOW + 99 * DAY)) == []
    assert_conserved(store, "a")


def test_an_account_with_five_thousand_live_expiring_lots_still_buys_and_spends(
    ledger: LedgerService, store: MemoryStore
) -> None:
    # Given 5,000 live expiring lots (seeded as they stand)
    lots = tuple(Lot(f"lot-{n:04d}", "purchase", 1000, 1000, NOW, NOW + (n + 1) * DAY) for n in range(5000))
    store.seed([Account("a", version=1, balance=5_000_000, granted=5_000_000, lots=lots)], NOW)
    # Then a grant and a consume succeed, and the account item stays small
    grant(ledger, "a", 1, "more", expires_at=NOW + 9999 * DAY)
    assert words(ledger, "a", 2, "use").status_code == 200
    (item,) = [x for x in store.raw_items("ACCOUNT#a") if x["sk"] == "ACCOUNT"]
    assert item_size(item) < 8 * 1024
