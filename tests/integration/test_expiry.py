"""The expiry sweep against real DynamoDB semantics, on moto and on DynamoDB Local."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.ledger import CONTENTION_BUDGET, Clock, Recorder, assert_conserved
from tollbooth.adapters.dynamodb import Keys, Repository
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.service import LedgerService
from tollbooth.app.sweep import ExpirySweeper
from tollbooth.domain import clock as clocks
from tollbooth.domain.catalog import load_history
from tollbooth.domain.errors import InsufficientCredits, StorageUnavailable
from tollbooth.domain.expiry import ExpiryIndexing
from tollbooth.domain.ledger import Account

DAY = 86_400_000
START = clocks.from_datetime(datetime(2027, 3, 1, tzinfo=UTC))
INDEXING = ExpiryIndexing(warning_window=7 * DAY, shards=4)


def on_engine(engine, table_name: str, kind: type[Repository] = Repository) -> Repository:  # type: ignore[no-untyped-def]
    """The repository (or a faulty ``kind`` of it) over the engine's table."""
    return kind(
        table_name,
        "us-east-1",
        endpoint_url=engine.dynamodb_url,
        max_transaction_items=engine.max_transaction_items,
        expiry=INDEXING,
    )


@pytest.fixture
def store(engine, table_name: str) -> Repository:  # type: ignore[no-untyped-def]
    return on_engine(engine, table_name)


@pytest.fixture
def ledger(store: Repository, clock: Clock) -> LedgerService:
    clock.pinned = START
    return LedgerService(store, load_history(), now=clock, max_write_attempts=30, write_budget=CONTENTION_BUDGET)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def sweeper(store: Repository, recorder: Recorder, clock: Clock) -> ExpirySweeper:
    return ExpirySweeper(store, recorder, INDEXING, now=clock)


def grant(ledger: LedgerService, account: str, credits: int, expires_at: int | None, name: str) -> str:
    expiry = None if expires_at is None else datetime.fromtimestamp(expires_at / 1000, tz=UTC)
    body = {"credits": credits, "name": name}
    idem = Idempotency.of(name, "grant", account, body)
    outcome = ledger.grant(account, credits * 1000, "promotional", "test", expiry, None, idem)
    return str(outcome.body["lots"][0]["lot_id"])


def buy(ledger: LedgerService, account: str, package_id: str, reference: str) -> list[dict]:
    body = {"package_id": package_id, "payment_reference": reference}
    return list(
        ledger.purchase(account, package_id, reference, Idempotency.of(reference, "purchase", account, body)).body[
            "lots"
        ]
    )


def use(ledger: LedgerService, account: str, credits: int, name: str) -> None:
    words = credits * 500  # text_generation: 1 credit per 500 words
    body = {"feature": "text_generation", "quantity": words}
    ledger.consume(account, "text_generation", words, {}, Idempotency.of(name, "consume", account, body))


def expire_entries(store: Repository, account: str) -> list:
    return [e for e in store.list_entries(account, 1000).entries if e.kind == "expire"]


def test_a_due_lot_is_written_off_once_with_its_breakage(
    ledger: LedgerService, store: Repository, recorder: Recorder, clock: Clock
) -> None:
    # Given a Starter pack (999 minor units for 1,000 credits, 12 months) with 300 credits used
    (lot,) = buy(ledger, "a", "starter", "pi_1")
    use(ledger, "a", 300, "use")
    expires_at = clocks.from_datetime(datetime.fromisoformat(lot["expires_at"]))
    # When the sweep runs a millisecond before expiry, Then nothing is written off
    clock.pinned = expires_at - 1
    assert sweeper(store, recorder, clock).sweep().expired_lots == 0
    # When it runs at the instant, Then the 700 left are written off, priced at what was paid
    clock.pinned = expires_at
    report = sweeper(store, recorder, clock).sweep()
    assert (report.expired_lots, report.expired_credits) == (1, 700_000)
    (entry,) = expire_entries(store, "a")
    assert entry.amount == -700_000 and entry.details["breakage_minor"] == 699  # 999 x 700/1000 = 699.3
    assert entry.details["lot_id"] == lot["lot_id"] and entry.idempotency_key == f"tollbooth:expire:{lot['lot_id']}"
    assert_conserved(store, "a")
    account = store.load_account("a")
    assert (account.expired, account.balance) == (700_000, 0)
    # And a second run, or one days late, does nothing twice
    clock.pinned = expires_at + 3 * DAY
    assert sweeper(store, recorder, clock).sweep().expired_lots == 0
    assert len(expire_entries(store, "a")) == 1
    assert recorder.ids("credits.expired") == [f"credits.expired:a:{lot['lot_id']}"]
    expired = recorder.events[-1]
    assert (expired["amount"], expired["breakage_minor"], expired["entry_id"]) == ("700.000", 699, entry.entry_id)


def test_spent_lots_and_lots_without_expiry_give_the_sweep_nothing_to_read(
    ledger: LedgerService, store: Repository, recorder: Recorder, clock: Clock
) -> None:
    # Given a lot that never expires and a lot spent in full before it expires
    grant(ledger, "b", 5, None, "forever")
    grant(ledger, "b", 2, START + DAY * 30, "spent")
    use(ledger, "b", 2, "spend")  # burn-down takes the expiring lot first
    # Then the account is not in the expiry index at all, and a sweep later writes nothing
    clock.pinned = START + DAY * 365
    assert not any(list(store.accounts_due(shard, clock(), 10)) for shard in range(INDEXING.shards))
    assert sweeper(store, recorder, clock).sweep().accounts == 0
    assert expire_entries(store, "b") == [] and recorder.events == []


def test_a_warning_goes_out_once_per_lot_n_days_before(
    ledger: LedgerService, store: Repository, recorder: Recorder, clock: Clock
) -> None:
    lot_id = grant(ledger, "c", 10, START + 10 * DAY, "ten-days")
    # Not yet: more than 7 days to go
    clock.pinned = START + 3 * DAY - 1
    sweeper(store, recorder, clock).sweep()
    assert recorder.events == []
    # At 7 days before expiry, once, however often the sweep runs
    for moment in (START + 3 * DAY, START + 4 * DAY, START + 9 * DAY):
        clock.pinned = moment
        sweeper(store, recorder, clock).sweep()
    assert recorder.ids("credits.expiring") == [f"credits.expiring:c:{lot_id}"]
    assert recorder.events[0]["amount"] == "10.000" and recorder.events[0]["expires_at"].startswith("2027-03-11")
    # The balance shows what expires within the window, and when
    balance = ledger.balance("c")
    assert balance.expiring_within_days == 7 and [(x.expires_at, x.amount) for x in balance.expiring] == [
        ("2027-03-11T00:00:00.000Z", "10.000")
    ]
    clock.pinned = START + 10 * DAY
    sweeper(store, recorder, clock).sweep()
    assert recorder.ids("credits.expired") == [f"credits.expired:c:{lot_id}"]


def test_many_lots_due_in_the_same_second_each_get_an_entry(
    ledger: LedgerService, store: Repository, recorder: Recorder, clock: Clock
) -> None:
    instant = START + 20 * DAY
    lots = [grant(ledger, "d", 1, instant, f"g{i}") for i in range(12)]
    lots += [grant(ledger, f"other-{i}", 1, instant, "g") for i in range(12)]
    clock.pinned = instant
    report = sweeper(store, recorder, clock).sweep()
    assert report.expired_lots == 24 and report.complete
    assert sorted(e.details["lot_id"] for e in expire_entries(store, "d")) == sorted(lots[:12])
    assert len(set(recorder.ids("credits.expired"))) == 24
    assert_conserved(store, "d")


def test_duplicate_and_concurrent_sweeps_expire_each_lot_exactly_once(
    ledger: LedgerService, store: Repository, recorder: Recorder, clock: Clock
) -> None:
    instant = START + 30 * DAY
    accounts = [f"e{i}" for i in range(10)]
    for account in accounts:
        grant(ledger, account, 3, instant, "first")
        grant(ledger, account, 4, instant + 1, "second")
    clock.pinned = instant + 1
    threads = [threading.Thread(target=sweeper(store, recorder, clock).sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sweeper(store, recorder, clock).sweep()
    for account in accounts:
        entries = expire_entries(store, account)
        assert Counter(e.details["lot_id"] for e in entries).most_common(1)[0][1] == 1 and len(entries) == 2
        assert store.load_account(account).expired == 7_000
        assert_conserved(store, account)
    # Every lot's event went out; a racing sweep may publish an outbox twice, under the same id
    assert len(set(recorder.ids("credits.expired"))) == 20


def test_a_sweep_racing_debits_never_expires_what_was_spent(
    ledger: LedgerService, store: Repository, recorder: Recorder, clock: Clock
) -> None:
    # Given 20 credits expiring at an instant and 20 that never expire
    instant = START + 40 * DAY
    grant(ledger, "f", 20, instant, "expiring")
    grant(ledger, "f", 20, None, "forever")
    clock.pinned = instant - 1
    results: Counter[str] = Counter()

    def debit(n: int) -> None:
        try:
            use(LedgerService(store, load_history(), now=clock), "f", 1, f"u{n}")
            results["ok"] += 1
        except InsufficientCredits:
            results["refused"] += 1

    # When debits race a sweep that runs at the instant of expiry
    threads = [threading.Thread(target=debit, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    at_expiry = Clock()
    at_expiry.pinned = instant
    sweeper(store, recorder, at_expiry).sweep()
    for thread in threads:
        thread.join()
    # Then what was debited was not also expired, and conservation holds
    account = store.load_account("f")
    assert account.consumed == results["ok"] * 1000
    assert_conserved(store, "f")
    # And once the sweep has run at the instant, the expiring lot is gone: every credit of it
    # was either spent before the instant or written off, never both
    clock.pinned = instant
    sweeper(store, recorder, clock).sweep()
    account = store.load_account("f")
    assert all(lot.expires_at != instant for lot in account.lots)
    (grant_entry,) = [e for e in store.list_entries("f", 1000).entries if e.idempotency_key == "expiring"]
    expiring_id = grant_entry.details["lot_ids"][0]
    spent = sum(
        draw["amount"]
        for e in store.list_entries("f", 1000).entries
        if e.kind == "consume"
        for draw in e.details["draws"]
        if draw["lot_id"] == expiring_id
    )
    assert account.expired + spent == 20_000
    assert_conserved(store, "f")


def test_an_interrupted_sweep_resumes_and_finishes(
    ledger: LedgerService, store: Repository, recorder: Recorder, clock: Clock
) -> None:
    instant = START + 50 * DAY
    for i in range(9):
        grant(ledger, f"g{i}", 1, instant, "lot")
    clock.pinned = instant
    budget = iter([60_000] * 4 + [0] * 100)  # time for 4 accounts, then the deadline is near
    first = sweeper(store, recorder, clock).sweep(time_left=lambda: next(budget), reserve_ms=10_000)
    assert not first.complete and first.expired_lots == 4
    second = sweeper(store, recorder, clock).sweep(time_left=lambda: 60_000)
    assert second.complete and second.expired_lots == 5
    assert sum(len(expire_entries(store, f"g{i}")) for i in range(9)) == 9


def test_events_wait_in_the_outbox_until_published(
    ledger: LedgerService, store: Repository, recorder: Recorder, clock: Clock
) -> None:
    instant = START + 60 * DAY
    lot_id = grant(ledger, "h", 2, instant, "lot")
    clock.pinned = instant
    recorder.failing = True
    report = sweeper(store, recorder, clock).sweep()
    # The write-off is committed even though publishing failed; the event waits
    assert report.expired_lots == 1 and report.failures == 1 and recorder.events == []
    assert store.load_account("h").pending_events
    recorder.failing = False
    again = sweeper(store, recorder, clock).sweep()
    assert again.expired_lots == 0 and recorder.ids("credits.expired") == [f"credits.expired:h:{lot_id}"]
    assert store.load_account("h").pending_events == ()
    assert sweeper(store, recorder, clock).sweep().accounts == 0


def test_an_allowance_with_rollover_is_written_off_only_after_the_next_grant_could_move_it(
    ledger: LedgerService, store: Repository, recorder: Recorder, clock: Clock
) -> None:
    period = clocks.from_datetime(datetime(2027, 3, 1, tzinfo=UTC))
    clock.pinned = period
    ledger.grant_allowance("p", "pro_monthly", datetime(2027, 3, 1, tzinfo=UTC))
    # At the period end the allowance is unspendable, but the sweep leaves it for the rollover
    april = clocks.from_datetime(datetime(2027, 4, 1, tzinfo=UTC))
    clock.pinned = april + 3_600_000
    assert sweeper(store, recorder, clock).sweep().expired_lots == 0
    ledger.grant_allowance("p", "pro_monthly", datetime(2027, 4, 1, tzinfo=UTC))
    # Once the grace has passed, what did not roll over is written off
    clock.pinned = april + 2 * DAY
    report = sweeper(store, recorder, clock).sweep()
    assert report.expired_lots == 1 and report.expired_credits == 1_500_000  # 2,000 - the 500 rolled over
    assert_conserved(store, "p")


class IndexDown(Repository):
    """The real repository, whose expiry index query fails for one shard, as a throttled or
    unreachable DynamoDB would make it."""

    broken_shard = 0

    def accounts_due(self, shard: int, now: int, page_size: int = 100) -> Iterator[Account]:
        if shard == self.broken_shard:
            raise StorageUnavailable("the ledger store failed; retry the request")
        yield from super().accounts_due(shard, now, page_size)


def test_a_failed_index_query_is_logged_counted_and_left_for_the_next_run(
    ledger: LedgerService, store: Repository, recorder: Recorder, clock: Clock, engine, table_name: str
) -> None:
    # Given due lots on accounts spread across the shards
    instant = START + 50 * DAY
    accounts = [f"acct-{i}" for i in range(12)]
    for account in accounts:
        grant(ledger, account, 1, instant, "lot")
    clock.pinned = instant
    broken = on_engine(engine, table_name, IndexDown)
    assert isinstance(broken, IndexDown)
    broken.broken_shard = int(Keys.expiry_shard(accounts[0], INDEXING.shards).removeprefix("EXPIRY#"))
    # When the sweep runs and one shard's index query fails
    report = ExpirySweeper(broken, recorder, INDEXING, now=clock).sweep()
    # Then the run ends normally, counts the shard, and expires everything the other shards hold
    assert report.shards_failed == 1 and not report.complete
    left = [a for a in accounts if not expire_entries(store, a)]
    assert accounts[0] in left and report.expired_lots == len(accounts) - len(left) > 0
    # And the next run, with the index back, finishes the job
    again = sweeper(store, recorder, clock).sweep()
    assert again.complete and again.expired_lots == len(left)
    assert all(len(expire_entries(store, a)) == 1 for a in accounts)


class SlowShard(Repository):
    """The real repository, whose expiry index answers for shard 0 only once the other
    shards have been read through (or after 10 s), as a hot partition might."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.others_read = threading.Event()
        self.read = 0
        self.waited_for_the_others = False
        self._lock = threading.Lock()

    def accounts_due(self, shard: int, now: int, page_size: int = 100) -> Iterator[Account]:
        if shard == 0:
            self.waited_for_the_others = self.others_read.wait(timeout=10)
        yield from super().accounts_due(shard, now, page_size)
        with self._lock:
            self.read += shard != 0
            if self.read == INDEXING.shards - 1:
                self.others_read.set()


def test_the_shards_are_swept_side_by_side_so_a_slow_one_holds_up_no_other(
    ledger: LedgerService, recorder: Recorder, clock: Clock, engine, table_name: str
) -> None:
    # Given due lots on accounts in every shard
    instant = START + 50 * DAY
    accounts = [f"side-{i}" for i in range(16)]
    for account in accounts:
        grant(ledger, account, 1, instant, "lot")
    shards = {Keys.expiry_shard(account, INDEXING.shards) for account in accounts}
    assert len(shards) == INDEXING.shards
    clock.pinned = instant
    slow = on_engine(engine, table_name, SlowShard)
    assert isinstance(slow, SlowShard)
    # When the sweep runs and shard 0's index query answers only after the others'
    report = ExpirySweeper(slow, recorder, INDEXING, now=clock).sweep()
    # Then the other shards were swept meanwhile, and the run expired every due lot
    assert slow.waited_for_the_others
    assert report.complete and report.expired_lots == len(accounts) == report.accounts
    assert all(len(expire_entries(slow, account)) == 1 for account in accounts)
