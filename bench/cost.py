"""Cost model: what each operation costs on AWS, from measured item sizes and request counts.

Each operation runs through the real use cases (``LedgerService``, ``UsageIngestor``,
``ExpirySweeper``) on the in-memory twin of the store, metered (``bench.billing``): every
item a transaction writes is sized as written (before and after, for updates and
deletes), every read sized as returned, and DynamoDB's on-demand rules turn them into
request units. Lambda, API Gateway (HTTP API) and SQS are added per operation, and all of
it priced per million operations. Then the records per second one hot account sustains
through SQS, and the issue's goals, with what each item costs where a goal is missed.
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bench.billing import PRICES, Metered, MeteredStore, Read
from bench.common import MAX_GRANT, Discard

DAY = 86_400_000
WORDS_PER_CREDIT = 500  # text_generation: 1 credit per 500 words
LIVE_EXPIRING = (0, 4, 6, 64)
PARTITION_WRU_PER_SECOND = 1000  # DynamoDB's per-partition write limit
TRANSACTION_MS = (10.0, 25.0)  # assumed time of one DynamoDB transaction on AWS (low, high)
AWS_REQUEST_MS = TRANSACTION_MS[1]  # added to the measured duration per DynamoDB request (billed)
LARGEST_BATCH = 95  # records of one account that fit one transaction (100 items, less account, entry, lots)
GOALS = {"consume_wru": 8.0, "usage_wru_per_record": 2.5, "hot_records_per_second": 2000.0}


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


@dataclass
class Operation:
    """One operation's bill: what it sent to DynamoDB (per ``per`` operations) and its Lambda share."""

    name: str
    metered: Metered
    per: int = 1  # operations the metered work covers (records of a usage batch)
    invocations: float = 1.0  # Lambda invocations per operation
    duration_share: float | None = None  # of billed_ms, per operation (None: one per invocation)
    api: bool = False  # an HTTP API request
    sqs_requests: float = 0.0  # per operation
    measured_ms: float = 0.0  # one invocation's (or the metered work's) duration, before AWS latency
    function: str = "ConsumeFunction"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def wru(self) -> float:
        return self.metered.write_units / self.per

    @property
    def rru(self) -> float:
        return self.metered.read_units / self.per

    @property
    def billed_ms(self) -> int:
        """One invocation's billed duration: measured, plus AWS's time for each DynamoDB request."""
        requests = sum(self.metered.requests().values())
        return math.ceil(self.measured_ms + requests * AWS_REQUEST_MS)


class _Rig:
    """A metered twin and the use cases on it, with a clock the bench moves."""

    def __init__(self, hot_slices: int = 0) -> None:
        from tollbooth.app.ingestion import UsageIngestor
        from tollbooth.app.service import LedgerService
        from tollbooth.app.sweep import ExpirySweeper
        from tollbooth.domain.catalog import load_history
        from tollbooth.domain.clock import from_datetime
        from tollbooth.domain.expiry import ExpiryIndexing

        self.now = from_datetime(datetime(2027, 1, 4, tzinfo=UTC))
        indexing = ExpiryIndexing()
        self.store = MeteredStore(expiry=indexing)
        # As deployed: a request publishes the events it left in the outbox right after it.
        self.service = LedgerService(
            self.store, load_history(), now=lambda: self.now, hot_slices=hot_slices, publisher=Discard()
        )
        self.ingestor = UsageIngestor(self.service, Discard(), Discard())
        self.sweeper = ExpirySweeper(self.store, Discard(), indexing, now=lambda: self.now)

    def grant(self, account: str, millicredits: int, expires_in_days: int | None = None) -> None:
        from tollbooth.app.idempotency import Idempotency

        expiry = None if expires_in_days is None else self.now + expires_in_days * DAY
        at = None if expiry is None else datetime.fromtimestamp(expiry / 1000, UTC)
        idem = Idempotency.of(_id("grant"), "grant", account, {"credits": millicredits})
        self.service.grant(account, millicredits, "promotional", "cost model", at, None, idem)

    def consume(self, account: str, credits: int, key: str | None = None, *, sliced: bool = False) -> None:
        from tollbooth.app.idempotency import Idempotency

        words = credits * WORDS_PER_CREDIT
        idem = Idempotency.of(key or _id("job"), "consume", account, {"quantity": words})
        self.service.consume(account, "text_generation", words, {}, idem, sliced=sliced)

    def usage_batch(self, accounts: list[str]) -> None:
        """One SQS batch: a message of one record for each of ``accounts``."""
        from tollbooth.contracts.usage import message_body
        from tollbooth.domain.clock import to_iso

        records = [
            {
                "event_id": _id("evt"),
                "account_id": account,
                "feature": "text_generation",
                "quantity": WORDS_PER_CREDIT,
                "occurred_at": to_iso(self.now),
                "worker_id": "worker-1",
                "tokens_in": 100,
                "tokens_out": 700,
            }
            for account in accounts
        ]
        retry, report = self.ingestor.ingest([(str(uuid.uuid4()), message_body([r])) for r in records])
        assert not retry and report.charged == len(records), (retry, report)

    def measure(self, action: Callable[[], object]) -> tuple[Metered, float]:
        """What ``action`` sent to DynamoDB, and its time in ms."""
        self.store.take()
        started = time.perf_counter()
        action()
        return self.store.take(), (time.perf_counter() - started) * 1000

    def account_bytes(self, account: str) -> int:
        from tollbooth.adapters.keys import Keys
        from tollbooth.adapters.memory_items import item_size

        return next(item_size(i) for i in self.store.raw_items(Keys.account(account)) if i["sk"] == Keys.ACCOUNT_SK)


def _median_ms(rig: _Rig, action: Callable[[], object], runs: int = 7) -> float:
    return statistics.median(rig.measure(action)[1] for _ in range(runs))


def consume_costs(live_expiring: int) -> dict[str, Any]:
    """A consume drawing 1 lot, then 2, from an account with ``live_expiring`` live expiring
    lots besides its main lot; a replay; and the cold read of the account."""
    rig = _Rig()
    account = _id("acct")
    rig.grant(account, MAX_GRANT)
    for n in range(live_expiring):
        rig.grant(account, 1_000_000, 60 + n)
    rig.consume(account, 1)  # the container wrote this account last: a warm consume is one request
    one, _ = rig.measure(lambda: rig.consume(account, 1))
    duration = _median_ms(rig, lambda: rig.consume(account, 1))
    # Worst case for two lots: the first, due before every other lot, runs out (it leaves the
    # store, and the account's index key moves).
    rig.grant(account, 1000, 30)
    two, _ = rig.measure(lambda: rig.consume(account, 2))
    assert sum(len(t.writes) for t in two.transactions) == 3, "account, entry, record: the lots' draws kept on it"
    key = _id("job")
    rig.consume(account, 1, key)
    replay, _ = rig.measure(lambda: rig.consume(account, 1, key))
    cold, _ = rig.measure(lambda: rig.store.load_account(account))
    return {
        "live": live_expiring,
        "account_bytes": rig.account_bytes(account),
        "one": one,
        "two": two,
        "replay": replay,
        "cold": cold,
        "ms": duration,
    }


def purchase_cost() -> Operation:
    from tollbooth.app.idempotency import Idempotency

    rig = _Rig()
    account = _id("acct")
    rig.grant(account, MAX_GRANT)

    def buy() -> None:
        reference = f"pi_{uuid.uuid4().hex[:24]}"
        idem = Idempotency.of(_id("order"), "purchase", account, {"package_id": "standard", "ref": reference})
        rig.service.purchase(account, "standard", reference, idem)

    metered, _ = rig.measure(buy)
    return Operation("purchase (standard package)", metered, api=True, measured_ms=_median_ms(rig, buy))


def usage_cost(records: int, spread: bool) -> Operation:
    """A usage batch of ``records`` records: for one hot account, or one account each."""
    rig = _Rig()
    accounts = [_id("acct") for _ in range(records)] if spread else [_id("hot")] * records
    for account in set(accounts):
        rig.grant(account, MAX_GRANT)
        for n in range(4):  # a few live expiring lots, drawn first
            rig.grant(account, 1_000_000, 60 + n)
    rig.usage_batch(accounts)
    metered, _ = rig.measure(lambda: rig.usage_batch(accounts))
    name = f"usage record: {'10 accounts' if spread else 'hot account'} (batch of {records})"
    return Operation(
        name,
        metered,
        per=records,
        invocations=1 / records,
        sqs_requests=1 / 10 + 2 / records,  # SendMessageBatch per 10; ReceiveMessage and DeleteMessageBatch per batch
        measured_ms=_median_ms(rig, lambda: rig.usage_batch(accounts)),
        function="UsageFunction",
        extra={"pk": f"ACCOUNT#{accounts[0]}", "records": records},
    )


def expiry_costs() -> tuple[Operation, Operation, int]:
    """One lot warned, then written off, by the sweep; and the sweep's Queries per run."""
    rig = _Rig()
    account = _id("acct")
    rig.grant(account, MAX_GRANT)
    rig.grant(account, 100_000, 30)
    rig.now += 25 * DAY  # within the warning window
    warned, warn_ms = rig.measure(rig.sweeper.sweep)
    rig.now += 6 * DAY  # past its expiry
    written_off, ms = rig.measure(rig.sweeper.sweep)
    empty = sum(1 for read in written_off.reads if read.operation == "Query" and not read.sizes)

    def per_lot(metered: Metered) -> Metered:  # the shard Queries that find nothing are per run
        return replace(metered, reads=[r for r in metered.reads if r.sizes or r.operation != "Query"])

    def operation(name: str, metered: Metered, ms: float) -> Operation:
        return Operation(
            name, per_lot(metered), invocations=0, duration_share=1, measured_ms=ms, function="ExpiryFunction"
        )

    warning = operation("expiry warning (one lot)", warned, warn_ms)
    return warning, operation("expiry write-off (one lot)", written_off, ms), empty


def template_settings() -> dict[str, Any]:
    """Lambda memory, and the SQS mapping's batch size and MaximumConcurrency, from template.yaml."""
    from tollbooth_local.template import Template

    template = Template()
    defaults = template.parameter_defaults()

    def value(raw: Any) -> Any:
        return defaults.get(raw["Ref"]) if isinstance(raw, dict) and "Ref" in raw else raw

    memory = template.document.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
    functions = template.resources_of("AWS::Serverless::Function")
    mapping = template.resources.get("UsageEventSource", {}).get("Properties", {})
    concurrency = value(mapping.get("ScalingConfig", {}).get("MaximumConcurrency"))
    return {
        "memory_mb": {name: int(spec["Properties"].get("MemorySize", memory)) for name, spec in functions.items()},
        "global_memory_mb": int(memory),
        "batch_size": int(value(mapping.get("BatchSize", 10))),
        "max_concurrency": None if concurrency is None else int(concurrency),
    }


def dollars(op: Operation, memory_mb: int) -> dict[str, float]:
    """Dollars per million operations, by service."""
    share = op.invocations if op.duration_share is None else op.duration_share
    gb_seconds = op.billed_ms / 1000 * memory_mb / 1024 * share
    return {
        "DynamoDB": op.wru * PRICES["dynamodb_per_million_wru"] + op.rru * PRICES["dynamodb_per_million_rru"],
        "Lambda": op.invocations * PRICES["lambda_per_million_requests"]
        + gb_seconds * PRICES["lambda_arm64_per_gb_second"] * 1e6,
        "API": PRICES["http_api_per_million_requests"] if op.api else 0.0,
        "SQS": op.sqs_requests * PRICES["sqs_per_million_requests"],
    }


def hot_account(op: Operation, settings: dict[str, Any]) -> dict[str, Any]:
    """Records per second one account sustains through SQS with batches like ``op``'s."""
    records = op.extra["records"]
    transactions = len(op.metered.transactions)
    partition = sum(t.partition_units(op.extra["pk"]) for t in op.metered.transactions)
    concurrency = settings["max_concurrency"] or 2  # missing: Lambda's least MaximumConcurrency
    bounds = {
        "partition": PARTITION_WRU_PER_SECOND / partition * records,
        "serialised_slow": records / (transactions * TRANSACTION_MS[1] / 1000),
        "serialised_fast": records / (transactions * TRANSACTION_MS[0] / 1000),
        "concurrency": concurrency * records / (op.billed_ms / 1000),
    }
    sustained = min(bounds["partition"], bounds["serialised_slow"], bounds["concurrency"])
    best = min(bounds["partition"], bounds["serialised_fast"], bounds["concurrency"])
    return {
        "records": records,
        "transactions": transactions,
        "partition_wru": partition,
        **bounds,
        "sustained": sustained,
        "best": best,
    }


def slice_consume_cost(measured_ms: float) -> Operation:
    """A warm consume of a hot account, served by its container's escrow slice."""
    rig = _Rig(hot_slices=32)
    account = _id("acct")
    rig.grant(account, MAX_GRANT)
    rig.consume(account, 1, sliced=True)  # the refill that fills the slices
    rig.consume(account, 1, sliced=True)
    metered, _ = rig.measure(lambda: rig.consume(account, 1, sliced=True))
    assert sum(len(t.writes) for t in metered.transactions) == 3, "slice, entry, record"
    return Operation("consume on a hot account's slice (warm)", metered, api=True, measured_ms=measured_ms)


def bench_cost(measured_ms: dict[str, float] | None = None) -> dict[str, Any]:
    """Every operation's bill. ``measured_ms``: handler medians from the same ``make bench``
    run ("consume", "usage batch" of 10 records, "expiry write-off" per lot); without them,
    the use cases are timed in process on the twin."""
    from bench.cost_drain import drain_costs, kept_limit
    from bench.cost_money import money_back_and_hold_costs

    measured = measured_ms or {}
    settings = template_settings()
    growth = [consume_costs(n) for n in LIVE_EXPIRING]
    drains = [drain_costs(kept_limit()), drain_costs(0)]
    base = growth[0]
    consume_ms = measured.get("consume", base["ms"])
    hot = usage_cost(settings["batch_size"], spread=False)
    if "usage batch" in measured and settings["batch_size"] == 10:
        hot.measured_ms = measured["usage batch"]
    warned, written_off, sweep_queries = expiry_costs()
    written_off.measured_ms = measured.get("expiry write-off", written_off.measured_ms)
    operations = [
        Operation("consume, draws 1 lot (warm)", base["one"], api=True, measured_ms=consume_ms),
        Operation("consume, draws 2 lots (warm)", base["two"], api=True, measured_ms=consume_ms),
        Operation("consume, cold container (adds the Query)", _cold(base), api=True, measured_ms=consume_ms),
        Operation("consume replayed (same Idempotency-Key)", base["replay"], api=True, measured_ms=consume_ms),
        slice_consume_cost(consume_ms),
        purchase_cost(),
        hot,
        usage_cost(10, spread=True),
        warned,
        written_off,
        *money_back_and_hold_costs(),
    ]
    largest = usage_cost(LARGEST_BATCH, spread=False)
    return {
        "settings": settings,
        "operations": operations,
        "hot_usage": hot,
        "growth": growth,
        "drains": drains,
        "hot": [hot_account(hot, settings), hot_account(largest, settings)],
        "largest": largest,
        "sweep_queries": sweep_queries,
        "measured": sorted(measured),
    }


def _cold(result: dict[str, Any]) -> Metered:
    """A cold consume: the account Query, then the same transaction."""
    cold: Read = result["cold"].reads[0]
    return Metered(transactions=list(result["one"].transactions), reads=[cold])


def render(result: dict[str, Any]) -> str:
    from bench.cost_render import render_cost

    return render_cost(result)
