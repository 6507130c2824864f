"""Hot accounts on the twin: a contended account's consumes are served by escrow slices.

Each slice is a partition of its own holding credits moved out of the account's lots; a
consume writes its slice, its entry and its idempotency record, never the account. A 402
comes only when the whole account, its slices pooled back, cannot pay. Every other change
sees the account whole. (The bench measures the throughput; tests/integration races real
writers on both engines.)"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tests.support.ledger import CONTENTION_BUDGET, Clock, Recorder, assert_conserved, buy, grant, ledger_over, words
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.ports import WriteConflict
from tollbooth.app.queries import ledger_page, position
from tollbooth.app.service import LedgerService
from tollbooth.app.sweep import ExpirySweeper
from tollbooth.app.writes import Writes
from tollbooth.domain import clock as clocks
from tollbooth.domain import refunds
from tollbooth.domain.errors import IdempotencyKeyReused, InsufficientCredits, StorageUnavailable
from tollbooth.domain.expiry import ExpiryIndexing
from tollbooth.domain.ledger import Account, Mutation

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
DAY = 86_400_000
SLICES = 8


class Racy(MemoryStore):
    """Loses the next ``armed`` writes of a consume on the account's own item, as a busy
    account does: the consume's first, freshly read attempt loses a race."""

    def __init__(self) -> None:
        super().__init__(expiry=ExpiryIndexing(warning_window=7 * DAY, shards=2), max_transaction_items=10)
        self.armed = 0
        self.refills_lost = 0  # refills to lose, as while other containers hold the account item
        self.spends = 0
        self.lose: str | None = None  # "spend" or "refill": commit the next one, and lose the answer
        self.unsteady = False  # every read of the account is one that could not catch it still

    def load_account(self, account_id: str) -> Account:
        account = super().load_account(account_id)
        return replace(account, consistent=False) if self.unsteady else account

    def apply(self, mutation: Mutation, now: int) -> None:
        entry = mutation.entry
        if self.armed and not mutation.spend and entry is not None and entry.kind == "consume":
            self.armed -= 1
            raise WriteConflict(WriteConflict.VERSION)
        if self.refills_lost and mutation.slice_moves and mutation.draws:
            self.refills_lost -= 1
            raise WriteConflict(WriteConflict.VERSION)
        self.spends += mutation.spend
        super().apply(mutation, now)
        kind = "spend" if mutation.spend else "refill" if mutation.slice_moves and mutation.draws else None
        if kind is not None and kind == self.lose:
            self.lose = None
            raise StorageUnavailable("the ledger store failed; retry the request")


@pytest.fixture
def clock() -> Clock:
    return Clock.at(NOW)


@pytest.fixture
def store() -> Racy:
    return Racy()


def container(store: Racy, clock: Clock, index: int) -> LedgerService:
    ledger = ledger_over(store, clock, hot_slices=SLICES)
    ledger.hot.index = index
    return ledger


def contend(ledger: LedgerService, store: Racy, key: str, credits: int = 1) -> None:
    store.armed = 2  # a remembered state that is stale, then a fresh read that loses
    assert words(ledger, "a", credits, key).status_code == 200


def test_a_consume_that_loses_a_race_is_served_by_a_slice_and_later_ones_skip_the_account(
    store: Racy, clock: Clock
) -> None:
    ledger = container(store, clock, 3)
    grant(ledger, "a", 800, "g1")
    contend(ledger, store, "c1", 5)
    version = store.load_account("a").version
    answers = [words(ledger, "a", 2, f"c{i}") for i in range(2, 12)]
    account = store.load_account("a")
    assert account.version == version  # no consume touched the account item
    assert store.spends == 11
    # The refill filled this container's slice, and a share of the rest into the others.
    assert 3 in [e.index for e in account.escrow]
    assert {answer.body["balance"] for answer in answers} == {None}  # a slice knows only its own credits
    assert ledger.balance("a").available == "775.000"
    assert_conserved(store, "a")


def test_a_replayed_slice_consume_answers_as_first_and_another_body_is_refused(store: Racy, clock: Clock) -> None:
    ledger = container(store, clock, 0)
    grant(ledger, "a", 100, "g1")
    contend(ledger, store, "c1")
    first = words(ledger, "a", 3, "c2")
    again = words(ledger, "a", 3, "c2")
    assert again.replayed and again.body == first.body
    with pytest.raises(IdempotencyKeyReused):
        words(ledger, "a", 3, "c2", body_extra=1)
    assert ledger.balance("a").available == "96.000"
    assert_conserved(store, "a")


def test_a_402_comes_only_when_the_whole_account_cannot_pay(store: Racy, clock: Clock) -> None:
    one, two = container(store, clock, 1), container(store, clock, 2)
    grant(one, "a", 40, "g1")
    contend(one, store, "c-one")
    contend(two, store, "c-two")  # both slices now hold credits
    served = 2
    for i in range(60):
        ledger = (one, two)[i % 2]
        try:
            words(ledger, "a", 1, f"k{i}")
            served += 1
        except InsufficientCredits:
            pass
    assert served == 40  # every credit was spent, by whichever container asked; no overdraft
    with pytest.raises(InsufficientCredits):
        words(one, "a", 1, "last")
    assert ledger.balance("a").balance == "0.000"  # the whole account, its slices with it
    assert_conserved(store, "a")


@pytest.mark.parametrize("lost", ["spend", "refill"])
def test_a_slice_write_whose_answer_is_lost_takes_effect_once_when_retried(
    store: Racy, clock: Clock, lost: str
) -> None:
    ledger = container(store, clock, 6)
    grant(ledger, "a", 100, "g1")
    contend(ledger, store, "c1")  # slice 6 now holds a share, 6.25 credits, less the 1 spent
    store.lose = lost
    lost_once = 0
    for n in range(8):  # the sixth empties the slice: its refill is the seventh's
        try:
            words(ledger, "a", 1, f"w{n}")
        except StorageUnavailable:
            lost_once += 1
            assert words(ledger, "a", 1, f"w{n}").status_code == 200  # the client's retry
    assert lost_once == 1 and store.lose is None
    assert ledger.balance("a").available == "91.000"
    assert_conserved(store, "a")


def test_reads_that_cannot_catch_the_account_still_refuse_only_after_every_slice_is_recalled(
    store: Racy, clock: Clock
) -> None:
    one, two = container(store, clock, 1), container(store, clock, 2)
    grant(one, "a", 20, "g1")
    contend(one, store, "c-one")
    contend(two, store, "c-two")
    store.unsteady = True
    served = 2
    for i in range(30):
        try:
            words((one, two)[i % 2], "a", 1, f"k{i}")
            served += 1
        except InsufficientCredits:
            assert store.load_account("a").escrow == ()  # refused on the account whole
    assert served == 20
    store.unsteady = False
    assert_conserved(store, "a")


def test_any_other_change_recalls_the_slices_first(store: Racy, clock: Clock) -> None:
    ledger = container(store, clock, 5)
    buy(ledger, "a", "starter", "pay-1")
    contend(ledger, store, "c1", 7)
    assert store.load_account("a").escrow
    grant(ledger, "a", 10, "g2")
    account = store.load_account("a")
    assert account.escrow == () and account.slices[0].held == 0
    assert account.consumed == 7_000  # what the slice spent, folded back into the account
    # A refund claws back what is left of the purchase's lots, though a slice held some of them.
    asked = refunds.RefundRequest(amount_minor=None, reason="goodwill", actor="ops")
    refund = ledger.refund("a", "pay-1", asked, Idempotency.of("r1", "refund", "a", {"r": 1}))
    assert refund.body["unrecovered"] == "7.000"
    assert_conserved(store, "a")


def test_the_sweep_writes_off_expired_credits_a_slice_holds(store: Racy, clock: Clock) -> None:
    ledger = container(store, clock, 4)
    grant(ledger, "a", 50, "g1", expires_at=NOW + 30 * DAY)
    contend(ledger, store, "c1", 10)
    clock.pinned = NOW + 31 * DAY
    ExpirySweeper(store, Recorder(), store.expiry, now=clock).sweep()
    account = store.load_account("a")
    assert account.expired == 40_000 and account.escrow == () and account.lots == ()
    assert_conserved(store, "a")


def test_history_lists_every_stream_newest_first_each_entry_once(store: Racy, clock: Clock) -> None:
    one, two = container(store, clock, 1), container(store, clock, 6)
    grant(one, "a", 100, "g1")
    contend(one, store, "c-one")
    contend(two, store, "c-two")
    for i in range(12):
        clock.pinned = NOW + i
        words((one, two)[i % 3 == 0], "a", 1, f"k{i}")
    grant(one, "a", 5, "g2")
    seen, cursor = [], None
    while True:
        page = ledger_page(store, "a", 4, cursor, 100)
        seen += page.entries
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 16 and len({entry.entry_id for entry in seen}) == 16
    streams = store.entry_streams("a")
    everything = [e for s in (None, *streams) for e in store.list_entries("a", 100, stream=s).entries]
    order = sorted(everything, key=position, reverse=True)
    assert [entry.entry_id for entry in seen] == [entry.entry_id for entry in order]
    assert {entry.slice for entry in seen} == {None, 1, 6}


def test_racing_containers_on_one_account_are_all_served_on_aws_semantics() -> None:
    """Eight containers at once on the twin with AWS's TransactionConflict: none refused."""
    store = MemoryStore(transaction_ms=2)
    clock = Clock()
    setup = ledger_over(store, clock, hot_slices=16)
    grant(setup, "a", 1000, "g1")
    failures: list[Exception] = []

    def run(n: int) -> None:
        ledger = LedgerService(
            store, setup.catalogs, now=clock, max_write_attempts=100, write_budget=CONTENTION_BUDGET, hot_slices=16
        )
        for i in range(15):
            try:
                words(ledger, "a", 1, f"t{n}-{i}")
            except Exception as error:  # every failure is the finding
                failures.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert setup.balance("a").available == "880.000"
    assert_conserved(store, "a")


def test_when_the_lots_are_too_few_to_share_a_consume_is_written_on_the_account(store: Racy, clock: Clock) -> None:
    ledger = container(store, clock, 3)
    grant(ledger, "a", 100, "g1")
    contend(ledger, store, "c1")  # the slices take their shares; the account keeps half
    # 30 credits: more than a slice holds, and more than a share of what the lots hold
    answer = words(ledger, "a", 30, "big")
    assert answer.status_code == 200 and answer.body["balance"] is None
    entry = store.list_entries("a", 1).entries[0]
    assert (entry.kind, entry.slice, entry.balance_after) == ("consume", None, None)
    assert store.load_account("a").escrow  # the slices were left alone
    assert ledger.balance("a").available == "69.000"
    assert_conserved(store, "a")


def test_a_consume_on_the_accounts_own_lots_reads_only_its_own_side_while_they_pay(store: Racy, clock: Clock) -> None:
    ledger = container(store, clock, 3)
    grant(ledger, "a", 100, "g1")
    contend(ledger, store, "c1")  # the slices take their shares; the account keeps half
    reads: list[str] = []
    own, whole = store.load_own, store.load_account
    store.load_own = lambda account_id: reads.append("own") or own(account_id)  # type: ignore[method-assign]
    # 30 credits: more than a share; the account's own lots pay them without its slices
    assert words(ledger, "a", 30, "big").status_code == 200
    assert reads == ["own", "own"]  # the refill that found too little to share, then the debit
    # 60 more: its own lots cannot, so it is read whole (slices recalled) before it is paid
    store.load_account = lambda account_id: reads.append("whole") or whole(account_id)  # type: ignore[method-assign]
    assert words(ledger, "a", 60, "bigger").status_code == 200
    assert "whole" in reads
    assert_conserved(store, "a")


def test_a_container_whose_slice_is_empty_spends_where_the_last_credits_are(store: Racy, clock: Clock) -> None:
    one, two = container(store, clock, 1), container(store, clock, 2)
    grant(one, "a", 40, "g1")
    contend(one, store, "c-one")  # slice 1 takes a share and spends 1 credit of it
    assert words(two, "a", 37, "big").status_code == 200  # on the account's own lots: 0.5 left there
    account = store.load_account("a")
    assert sum(lot.remaining for lot in account.lots) < 1000 <= sum(p.remaining for p in account.slice(1).portions)
    writes = store.writes
    # Container two's slice holds nothing and the lots too little: it spends on slice 1,
    # with no recall and no refill (one write).
    assert words(two, "a", 1, "late").status_code == 200
    assert store.writes == writes + 1
    assert two.hot.index == 1
    assert_conserved(store, "a")


def test_a_refill_that_keeps_losing_the_account_item_looks_again_rather_than_answer_409(
    store: Racy, clock: Clock
) -> None:
    ledger = container(store, clock, 3)
    grant(ledger, "a", 1000, "g1")
    contend(ledger, store, "c1")  # slice 3 takes its share: 62.5 credits, 1 spent
    assert words(ledger, "a", 61, "most").status_code == 200  # half a credit left in the slice
    # Other containers hold the account item through more attempts than one write makes (10)
    store.refills_lost = 12
    assert words(ledger, "a", 2, "more").status_code == 200
    assert store.refills_lost == 0
    assert ledger.balance("a").available == "936.000"
    assert_conserved(store, "a")


def test_a_refill_that_lost_the_account_item_spends_as_soon_as_the_winner_fills_its_slice(
    store: Racy, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Writes, "_backoff", staticmethod(lambda attempt: 0.02))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:  # meanwhile another container on slice 5 refills it, and spends
            store.armed = 2
            assert words(container(store, clock, 5), "a", 1, "theirs").status_code == 200

    ledger = ledger_over(store, clock, hot_slices=SLICES, sleep=sleep)
    ledger.hot.index = 5
    grant(ledger, "a", 1000, "g1")
    store.armed, store.refills_lost = 2, 1  # contended; then its refill of slice 5 loses
    assert words(ledger, "a", 2, "mine").status_code == 200
    # It looked at its slice while it waited, and stopped waiting once the slice could pay,
    # rather than wait out its backoff (0.02 s) and read the account item again.
    assert waits == [pytest.approx(0.002)]
    assert ledger.balance("a").available == "997.000"
    assert_conserved(store, "a")


def test_a_consume_on_the_accounts_own_lots_that_keeps_losing_looks_again_rather_than_answer_409(
    store: Racy, clock: Clock
) -> None:
    ledger = container(store, clock, 3)
    grant(ledger, "a", 100, "g1")
    contend(ledger, store, "c1")  # the slices take their shares; the account keeps half
    # 30 credits: more than a share, so written on the account's own lots; other containers
    # hold the account item through more attempts than one write makes (10)
    store.armed = 12
    answer = words(ledger, "a", 30, "big")
    assert answer.status_code == 200 and store.armed == 0
    assert ledger.balance("a").available == "69.000"
    assert_conserved(store, "a")
