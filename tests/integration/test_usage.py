"""Usage ingestion against real DynamoDB semantics (moto and DynamoDB Local): exactly once,
nothing dropped, arrears, and the fewest writes for hot accounts."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.ledger import CONTENTION_BUDGET, Clock, DeadLetterBox, Recorder, assert_conserved, usage
from tollbooth.adapters.dynamodb import Repository
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.ingestion import UsageIngestor
from tollbooth.app.service import LedgerService
from tollbooth.contracts.usage import message_body
from tollbooth.domain import clock as clocks
from tollbooth.domain.catalog import CatalogHistory, load_history, parse_catalog
from tollbooth.domain.errors import ConcurrentUpdate, InsufficientCredits

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))


class CountingRepository(Repository):
    """The real repository, counting the write requests it makes."""

    writes = 0

    def apply(self, mutation: Any, now: int) -> None:
        self.writes += 1
        super().apply(mutation, now)


@pytest.fixture
def store(engine, table_name: str) -> CountingRepository:  # type: ignore[no-untyped-def]
    return CountingRepository(
        table_name,
        "us-east-1",
        endpoint_url=engine.dynamodb_url,
        max_transaction_items=engine.max_transaction_items,
    )


@pytest.fixture
def ledger(store: Repository, clock: Clock) -> LedgerService:
    clock.pinned = NOW
    return LedgerService(store, load_history(), now=clock, max_write_attempts=30, write_budget=CONTENTION_BUDGET)


@pytest.fixture
def dead_letters() -> DeadLetterBox:
    return DeadLetterBox()


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
def ingestor(ledger: LedgerService, events: Recorder, dead_letters: DeadLetterBox) -> UsageIngestor:
    return UsageIngestor(ledger, events, dead_letters)


def fund(ledger: LedgerService, account: str, credits: int) -> None:
    body = {"credits": credits}
    ledger.grant(
        account, credits * 1000, "promotional", "test", None, None, Idempotency.of("fund", "grant", account, body)
    )


def deliver(ingestor: UsageIngestor, messages: Sequence[tuple[str, str]]) -> tuple[dict[str, str], Any]:
    return ingestor.ingest(list(messages))


def usage_entries(store: Repository, account: str) -> list:
    return [e for e in store.list_entries(account, 1000).entries if e.kind == "usage"]


def charged_records(store: Repository, account: str) -> list[dict]:
    """Every usage record the account's ledger charged, oldest entry first."""
    return [line for entry in reversed(usage_entries(store, account)) for line in entry.details["records"]]


def test_every_record_is_charged_once_when_every_message_arrives_three_times(
    ingestor: UsageIngestor, ledger: LedgerService, store: Repository
) -> None:
    # Given 30 records for 3 accounts in 6 messages, every message delivered 3 times, shuffled
    accounts = ["a", "b", "c"]
    for account in accounts:
        fund(ledger, account, 100)
    records = [usage(f"e{i}", accounts[i % 3], credits=1 + i % 4) for i in range(30)]
    messages = [(f"m{n}", message_body(records[n * 5 : n * 5 + 5])) for n in range(6)]
    deliveries = messages * 3
    random.Random(7).shuffle(deliveries)
    # When they arrive in batches of up to 10 messages
    for start in range(0, len(deliveries), 10):
        retry, _ = deliver(ingestor, deliveries[start : start + 10])
        assert retry == {}
    # Then each event_id has exactly one charge, and the totals match the records
    for account in accounts:
        charged = Counter(line["event_id"] for line in charged_records(store, account))
        expected = {r["event_id"] for r in records if r["account_id"] == account}
        assert set(charged) == expected and set(charged.values()) == {1}
        consumed = sum(r["quantity"] * 2 for r in records if r["account_id"] == account)  # 500 words = 1,000
        assert store.load_account(account).consumed == consumed
        assert_conserved(store, account)


def test_a_crash_after_commit_redelivers_without_charging_twice(
    ingestor: UsageIngestor, ledger: LedgerService, store: Repository
) -> None:
    fund(ledger, "a", 10)
    messages = [("m1", message_body([usage("x1", "a"), usage("x2", "a", 2)]))]
    _, first = deliver(ingestor, messages)
    # The function committed, then died before SQS deleted the message: it comes back
    _, again = deliver(ingestor, messages)
    assert (first.charged, again.charged, again.duplicates) == (2, 0, 2)
    assert store.load_account("a").consumed == 3000


def test_a_mixed_batch_charges_the_good_dead_letters_the_bad_and_records_arrears(
    ingestor: UsageIngestor, ledger: LedgerService, store: Repository, dead_letters: DeadLetterBox, events: Recorder
) -> None:
    # Given a funded account, an account with 2 credits, and poison among the records
    fund(ledger, "rich", 100)
    fund(ledger, "poor", 2)
    good = [usage("g1", "rich", 3), usage("g2", "poor", 5)]
    poison = [
        {**usage("p1", "rich"), "quantity": "many"},
        usage("p2", "rich", feature="telepathy") | {"feature": "telepathy"},
        {**usage("p3", "rich"), "quantity": 0},
        {**usage("p4", "rich"), "feature": "video_generation", "quantity": 999_999},
    ]
    messages = [("m1", message_body(good[:1] + poison[:2])), ("m2", message_body(good[1:] + poison[2:])), ("m3", "{")]
    # When the batch is ingested
    retry, report = deliver(ingestor, messages)
    # Then nothing is retried, the good records are charged, and each poison record is dead-lettered with its reason
    assert retry == {} and report.charged == 2 and report.rejected == 5
    by_message = {source: (body, reasons) for body, reasons, source in dead_letters.sent}
    assert [r["event_id"] for r in by_message["m1"][0]["records"]] == ["p1", "p2"]
    assert "quantity" in by_message["m1"][1][0] and "unknown_feature" in by_message["m1"][1][1]
    assert "invalid_quantity" in by_message["m2"][1][1] and by_message["m3"][0] == {"raw": "{"}
    # And the poor account went into arrears: usage is never dropped
    poor = store.load_account("poor")
    assert (poor.consumed, poor.arrears, poor.balance) == (5000, 3000, -3000)
    assert_conserved(store, "poor")
    assert events.ids("account.overdrawn") == [f"account.overdrawn:poor:{poor.seq}"]
    assert store.load_account("poor").pending_events == ()


def test_arrears_block_the_api_and_are_paid_off_first_by_the_next_purchase(
    ingestor: UsageIngestor, ledger: LedgerService, store: Repository, events: Recorder
) -> None:
    deliver(ingestor, [("m1", message_body([usage("u1", "d", 4)]))])
    # More usage while in arrears adds to them, with no second overdrawn event
    deliver(ingestor, [("m2", message_body([usage("u2", "d", 1)]))])
    assert store.load_account("d").arrears == 5000 and len(events.ids("account.overdrawn")) == 1
    body = {"feature": "text_generation", "quantity": 500}
    with pytest.raises(InsufficientCredits, match=r"owes 5\.000"):
        ledger.consume("d", "text_generation", 500, {}, Idempotency.of("api", "consume", "d", body))
    # When a Starter pack (1,000 credits) is bought, Then 5 pay the arrears off
    purchase = {"package_id": "starter", "payment_reference": "pi_d"}
    ledger.purchase("d", "starter", "pi_d", Idempotency.of("buy", "purchase", "d", purchase))
    account = store.load_account("d")
    assert account.arrears == 0 and account.balance == 995_000
    assert ledger.balance("d").available == "995.000"
    entry = ledger.ledger("d", 1, None).entries[0]
    assert entry.kind == "purchase" and entry.arrears_paid == "5.000"
    assert_conserved(store, "d")
    ledger.consume("d", "text_generation", 500, {}, Idempotency.of("api", "consume", "d", body))


def test_ten_records_of_one_account_are_one_write_and_resource_metrics_are_kept(
    ingestor: UsageIngestor, ledger: LedgerService, store: CountingRepository
) -> None:
    fund(ledger, "hot", 100)
    metrics = {
        "tokens_in": 10,
        "tokens_out": 90,
        "gpu_ms": 1200,
        "model": "m-7b",
        "provider_cost": {"amount_minor": 4, "currency": "USD"},
    }
    records = [usage(f"h{i}", "hot", **metrics) for i in range(10)]
    store.writes = 0
    deliver(ingestor, [(f"m{i}", message_body([record])) for i, record in enumerate(records)])
    # One transaction on DynamoDB (100 items); the older DynamoDB Local takes 10 items, so 2
    assert store.writes == (1 if store.max_transaction_items >= 12 else 2)
    line = charged_records(store, "hot")[0]
    assert line["resources"] == metrics and line["worker_id"] == "w1" and line["charged"] == 1000


def test_an_event_id_reused_with_other_contents_is_dead_lettered_not_charged(
    ingestor: UsageIngestor, ledger: LedgerService, store: Repository, dead_letters: DeadLetterBox
) -> None:
    fund(ledger, "a", 10)
    deliver(ingestor, [("m1", message_body([usage("same", "a", 1)]))])
    retry, report = deliver(ingestor, [("m2", message_body([usage("same", "a", 3)]))])
    assert retry == {} and report.rejected == 1 and report.charged == 0
    assert "different record" in dead_letters.sent[0][1][0]
    assert store.load_account("a").consumed == 1000


def test_records_are_priced_by_the_catalog_version_in_force_when_they_occurred(
    store: Repository, clock: Clock, events: Recorder, dead_letters: DeadLetterBox
) -> None:
    base = load_history().versions[0]
    text = base.model_dump(mode="json")
    cheap = parse_catalog(_toml(text, "v1", "2026-01-01T00:00:00Z", "1"))
    dear = parse_catalog(_toml(text, "v2", "2027-01-15T00:00:00Z", "2"))
    clock.pinned = NOW
    ledger = LedgerService(store, CatalogHistory.of(cheap, dear), now=clock)
    fund(ledger, "a", 100)
    before = usage("before", "a", occurred_at="2027-01-14T23:59:59Z")
    after = usage("after", "a", occurred_at="2027-01-15T00:00:00Z")
    UsageIngestor(ledger, events, dead_letters).ingest([("m", message_body([before, after]))])
    charged = {line["event_id"]: (line["charged"], line["catalog_version"]) for line in charged_records(store, "a")}
    assert charged == {"before": (1000, "v1"), "after": (2000, "v2")}


def _toml(_: dict, version: str, effective_from: str, credits: str) -> str:
    return (
        f'version = "{version}"\neffective_from = {effective_from}\n'
        f'[features.text_generation]\nunit = "word"\ncredits = {credits}\nper = 500\ngranularity = 0.01\n'
    )


def test_conservation_holds_across_ingestion_and_api_consumes_together(
    ingestor: UsageIngestor, ledger: LedgerService, store: Repository, clock: Clock
) -> None:
    fund(ledger, "both", 30)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def api(n: int) -> None:
        body = {"feature": "text_generation", "quantity": 500, "n": n}
        service = LedgerService(store, load_history(), now=clock, max_write_attempts=50, write_budget=CONTENTION_BUDGET)
        try:
            service.consume("both", "text_generation", 500, {}, Idempotency.of(f"api{n}", "consume", "both", body))
            with lock:
                outcomes["api"] += 1
        except InsufficientCredits:
            with lock:
                outcomes["refused"] += 1

    def worker(n: int) -> None:
        messages = [(f"w{n}", message_body([usage(f"w{n}-{i}", "both") for i in range(3)]))]
        UsageIngestor(
            LedgerService(store, load_history(), now=clock, max_write_attempts=50, write_budget=CONTENTION_BUDGET),
            Recorder(),
            DeadLetterBox(),
        ).ingest(messages)

    threads = [threading.Thread(target=api, args=(n,)) for n in range(10)]
    threads += [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    account = store.load_account("both")
    assert account.consumed == (outcomes["api"] + 18) * 1000
    assert account.balance == 30_000 - account.consumed
    assert_conserved(store, "both")


class BusyFor(LedgerService):
    """The real service, except that one account is always busy."""

    busy = "busy"

    def ingest_usage(self, account_id: str, records: list) -> Any:  # type: ignore[override]
        if account_id == self.busy:
            from tollbooth.domain.errors import ConcurrentUpdate

            raise ConcurrentUpdate("the account stayed busy")
        return super().ingest_usage(account_id, records)


def test_a_message_that_will_be_retried_is_not_dead_lettered_yet(
    store: Repository, clock: Clock, events: Recorder, dead_letters: DeadLetterBox
) -> None:
    clock.pinned = NOW
    service = BusyFor(store, load_history(), now=clock)
    fund(service, "calm", 10)
    body = message_body([usage("ok", "calm"), usage("later", "busy"), {**usage("bad", "calm"), "quantity": 0}])
    retry, report = UsageIngestor(service, events, dead_letters).ingest([("m1", body)])
    # The message comes back (its busy account's record is not charged yet): no DLQ copy now
    assert set(retry) == {"m1"} and dead_letters.sent == [] and report.charged == 1
    # Once the account is free, the redelivery charges the rest and dead-letters the bad record once
    service.busy = "nobody"
    retry, report = UsageIngestor(service, events, dead_letters).ingest([("m1", body)])
    assert retry == {} and (report.charged, report.duplicates) == (1, 1)
    assert [[r["event_id"] for r in sent["records"]] for sent, _, _ in dead_letters.sent] == [["bad"]]


def test_usage_from_the_future_is_refused(ingestor: UsageIngestor, ledger: LedgerService, store: Repository) -> None:
    fund(ledger, "a", 10)
    _, report = deliver(ingestor, [("m", message_body([usage("f", "a", occurred_at="2027-02-01T00:06:00Z")]))])
    assert report.rejected == 1 and store.load_account("a").consumed == 0


@pytest.mark.parametrize("occurred_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", 1_800_000_000])
def test_a_poison_record_in_a_mixed_batch_costs_only_itself(
    ingestor: UsageIngestor, ledger: LedgerService, store: Repository, dead_letters: DeadLetterBox, occurred_at: object
) -> None:
    # Given four messages: valid usage for a, a record whose occurred_at cannot be an instant, valid for b and c
    for account in ("a", "b", "c"):
        fund(ledger, account, 10)
    poison = {**usage("poison", "a"), "occurred_at": occurred_at}
    messages = [
        ("m-a", message_body([usage("ua", "a")])),
        ("m-poison", message_body([poison])),
        ("m-b", message_body([usage("ub", "b", 2)])),
        ("m-c", message_body([usage("uc", "c", 3)])),
    ]
    # When the batch is ingested
    retry, report = deliver(ingestor, messages)
    # Then nothing is retried, every valid record is charged once, and only the poison is dead-lettered, with why
    assert retry == {} and (report.charged, report.rejected) == (3, 1)
    assert [store.load_account(account).consumed for account in ("a", "b", "c")] == [1000, 2000, 3000]
    ((body, reasons, source),) = dead_letters.sent
    assert source == "m-poison" and body["records"] == [poison]
    assert reasons[0].startswith("occurred_at:")
    # And a redelivery of the whole batch charges nothing again
    _, again = deliver(ingestor, messages)
    assert (again.charged, again.duplicates) == (0, 3)


class FailsFor:
    """A ledger service whose usage charging fails unexpectedly for one account."""

    def __init__(self, service: LedgerService, account: str) -> None:
        self.service, self.account = service, account
        self.repository, self.writes = service.repository, service.writes

    def ingest_usage(self, account_id: str, records: list) -> Any:
        if account_id == self.account:
            raise RuntimeError("a bug nobody has found yet")
        return self.service.ingest_usage(account_id, records)

    def now(self) -> int:
        return self.service.now()


def test_an_unexpected_error_for_one_account_is_retried_then_dead_lettered_with_its_reason_on_the_last_receive(
    ledger: LedgerService, store: Repository, dead_letters: DeadLetterBox, events: Recorder
) -> None:
    # Given charging account b fails with an unexpected error, and one message holds usage for a and b
    ingestor = UsageIngestor(FailsFor(ledger, "b"), events, dead_letters)  # type: ignore[arg-type]
    for account in ("a", "b", "c"):
        fund(ledger, account, 10)
    messages = [("m-ab", message_body([usage("ua", "a"), usage("ub", "b")])), ("m-c", message_body([usage("uc", "c")]))]
    # When it is received (not for the last time)
    retry, report = ingestor.ingest(messages)
    # Then the batch survives: a and c are charged, and only the message holding b's record is retried
    assert list(retry) == ["m-ab"] and "RuntimeError" in retry["m-ab"] and report.charged == 2
    assert dead_letters.sent == []
    # When SQS delivers it for the last time
    retry, report = ingestor.ingest(messages[:1], last_receive={"m-ab"})
    # Then b's record is dead-lettered with its reason instead of being moved without one, and a is not charged twice
    assert retry == {} and (report.charged, report.duplicates) == (0, 1)
    ((body, reasons, source),) = dead_letters.sent
    assert source == "m-ab" and [r["event_id"] for r in body["records"]] == ["ub"]
    assert reasons == ["not charged: unexpected error (RuntimeError); see the logs"]
    assert [store.load_account(account).consumed for account in ("a", "b", "c")] == [1000, 0, 1000]


def test_a_busy_account_on_the_last_receive_is_dead_lettered_with_its_reason(
    ledger: LedgerService, dead_letters: DeadLetterBox, events: Recorder
) -> None:
    class Busy(FailsFor):
        def ingest_usage(self, account_id: str, records: list) -> Any:
            raise ConcurrentUpdate("the account stayed busy; the usage will be retried")

    ingestor = UsageIngestor(Busy(ledger, "a"), events, dead_letters)  # type: ignore[arg-type]
    retry, _ = ingestor.ingest([("m", message_body([usage("u1", "a")]))], last_receive={"m"})
    assert retry == {}
    ((_, reasons, _),) = dead_letters.sent
    assert reasons == ["not charged: the account stayed busy; the usage will be retried"]
