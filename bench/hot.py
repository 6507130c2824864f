"""Hot accounts: N containers spending from one account, against the same N on N accounts.

On DynamoDB Local, each container is a separate process running ConsumeFunction's handler
on API Gateway events, one invocation at a time, as Lambda runs it. The hot run and the
spread run alternate (spread, hot, spread, hot) so drift hits both alike; each reports
throughput, p50 and p99 latency, and the status of every request. Then the boundary: the
hot account holds credits for exactly half of the requests, and exactly that half must
succeed, the rest get 402, with nothing created or lost.

On the twin configured with AWS's semantics (a transaction holds its items for
``TWIN_TRANSACTION_MS``, overlapping transactions on one item are cancelled, a partition
takes 1,000 write units per second), the same comparison runs with threads (the twin is
in memory; its transactions sleep, so threads overlap as processes would).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from typing import Any

from bench.common import MAX_GRANT, Discard

CONTAINERS = tuple(int(n) for n in os.environ.get("BENCH_HOT_CONTAINERS", "4,16").split(","))
REQUESTS = int(os.environ.get("BENCH_HOT_REQUESTS", "40"))  # per container
TWIN_RUNS = int(os.environ.get("BENCH_HOT_TWIN_RUNS", "5"))
# Runs of each shape on DynamoDB Local: the median of 3 stands when one run catches the
# machine slow (16 processes on 2 cores); of 2 it is their mean.
LOCAL_RUNS = int(os.environ.get("BENCH_HOT_LOCAL_RUNS", "3"))
TWIN_TRANSACTION_MS = 10.0  # a DynamoDB transaction's time on AWS, roughly (10-25 ms)
SLICES = 32  # the deployed default (Settings.hot_account_slices)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _summary(results: list[tuple[int, float]], seconds: float) -> dict[str, Any]:
    latencies = [latency for _, latency in results]
    return {
        "requests": len(results),
        "per_second": len(results) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": _percentile(latencies, 0.99),
        "statuses": dict(Counter(status for status, _ in results)),
    }


# -- DynamoDB Local: one process per container ------------------------------------------


def _container(table: str, url: str, accounts: list[str], start_at: float, queue: Any) -> None:
    """One Lambda container: import the handler, wait for the start, run one request at a time."""
    # DynamoDB Local takes 10 items per transaction, as the local stack tells the functions.
    os.environ.update(TABLE_NAME=table, AWS_ENDPOINT_URL=url, POWERTOOLS_LOG_LEVEL="ERROR", MAX_TRANSACTION_ITEMS="10")
    from bench.consume import consume_event
    from tollbooth_local.functions import LambdaContext, load_function
    from tollbooth_local.template import Template

    handler = load_function(Template().functions()["ConsumeFunction"])
    context = LambdaContext("ConsumeFunction", 10)
    prefix = uuid.uuid4().hex[:8]
    time.sleep(max(0.0, start_at - time.time()))
    results = []
    for n, account in enumerate(accounts):
        begin = time.perf_counter()
        response = handler(consume_event(account, f"{prefix}-{n}"), context)
        results.append((int(response["statusCode"]), time.perf_counter() - begin))
    queue.put(results)


def _run_processes(table: str, url: str, plans: list[list[str]]) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    start_at = time.time() + 8.0  # every container imported and waiting
    workers = [spawn.Process(target=_container, args=(table, url, plan, start_at, queue)) for plan in plans]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=600) for _ in workers]
    ended = time.time()
    for worker in workers:
        worker.join()
    flat = [result for container in results for result in container]
    return _summary(flat, ended - start_at)


def _fund(service: Any, account: str, credits: int) -> None:
    from tollbooth.app.idempotency import Idempotency

    service.grant(account, credits, "promotional", "bench", None, None, Idempotency.of("fund", "grant", account, {}))


def _request_cost() -> int:
    from tollbooth.domain.catalog import load_history
    from tollbooth.domain.clock import now_ms
    from tollbooth.domain.pricing import price

    return price(load_history().in_force(now_ms()), "image_generation", 1).amount


def _local(url: str) -> dict[str, Any]:
    from tollbooth.adapters.dynamodb import Repository
    from tollbooth.app.service import LedgerService
    from tollbooth.domain.catalog import load_history
    from tollbooth_local.aws import create_table
    from tollbooth_local.template import Template

    table = f"bench-hot-{uuid.uuid4().hex[:8]}"
    create_table(url, table, Template().resources["LedgerTable"]["Properties"])
    service = LedgerService(Repository(table, "us-east-1", endpoint_url=url, max_transaction_items=10), load_history())
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for n in CONTAINERS:
        runs[n] = {"spread": [], "hot": []}
        for _ in range(LOCAL_RUNS):
            for shape in ("spread", "hot"):
                run = uuid.uuid4().hex[:6]
                accounts = [f"hot-{run}"] * n if shape == "hot" else [f"spread-{run}-{i}" for i in range(n)]
                for account in set(accounts):
                    _fund(service, account, MAX_GRANT)
                runs[n][shape].append(_run_processes(table, url, [[a] * REQUESTS for a in accounts]))
    boundary = _boundary(service, table, url, max(CONTAINERS))
    return {"runs": runs, "boundary": boundary}


def _boundary(service: Any, table: str, url: str, containers: int) -> dict[str, Any]:
    """Credits for exactly half of the requests: that half succeeds, the rest get 402."""
    account = f"edge-{uuid.uuid4().hex[:6]}"
    total = containers * REQUESTS
    covered = total // 2
    _fund(service, account, covered * _request_cost())
    summary = _run_processes(table, url, [[account] * REQUESTS for _ in range(containers)])
    from tollbooth.domain.slices import pooled

    whole = pooled(service.repository.load_account(account))  # its slices' credits with its own
    conserved = whole.balance == whole.granted - whole.consumed - whole.expired == 0
    return {"requests": total, "covered": covered, "statuses": summary["statuses"], "conserved": conserved}


# -- the twin with AWS's semantics: one thread per container -----------------------------


def _twin_shape(shape: str, containers: int, holds: bool = False) -> dict[str, Any]:
    """One run on the twin: a thread per container, on one account (hot) or one each
    (spread); each request a consume, or (``holds``) a hold placed and then captured."""
    from tollbooth.adapters.memory import MemoryStore
    from tollbooth.app.idempotency import Idempotency
    from tollbooth.app.service import LedgerService
    from tollbooth.domain.catalog import load_history
    from tollbooth.domain.errors import TollboothError

    history = load_history()
    store = MemoryStore(transaction_ms=TWIN_TRANSACTION_MS, partition_write_units_per_second=1000)
    accounts = [f"{shape}-{i}" if shape == "spread" else "hot" for i in range(containers)]
    for account in set(accounts):
        _fund(LedgerService(store, history), account, MAX_GRANT)
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def container(account: str, name: int) -> None:
        # As deployed: a request's events are published right after it.
        service = LedgerService(store, history, hot_slices=SLICES, publisher=Discard())
        for n in range(REQUESTS):
            idem = Idempotency.of(f"{name}-{n}", "consume", account, {"feature": "image_generation", "quantity": 1})
            begin = time.perf_counter()
            try:
                if holds:
                    status = _hold_and_capture(service, account, f"{name}-{n}")
                else:
                    status = service.consume(account, "image_generation", 1, {}, idem).status_code
            except TollboothError as error:
                status = {"concurrent_update": 409, "insufficient_credits": 402}.get(error.code, 503)
            with lock:
                results.append((status, time.perf_counter() - begin))

    threads = [threading.Thread(target=container, args=(a, i)) for i, a in enumerate(accounts)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _summary(results, time.perf_counter() - started) | {"conflicts": store.conflicts}


def _hold_and_capture(service: Any, account: str, key: str) -> int:
    """A job's hold (one image's price) placed, then captured: the status of the capture."""
    from tollbooth.app.idempotency import Idempotency
    from tollbooth.domain.holds import HoldRequest

    asked = HoldRequest("image_generation", 1, {}, None, 900)
    held = service.holds.place(account, asked, Idempotency.of(f"h-{key}", "hold", account, {}))
    idem = Idempotency.of(f"c-{key}", "capture", account, {})
    return int(service.holds.capture(account, held.body["hold_id"], 1, None, idem).status_code)


def _twin(containers: int, holds: bool = False) -> dict[str, list[dict[str, Any]]]:
    """TWIN_RUNS alternating runs of each shape: a p99 of one run is its few slowest requests."""
    runs: dict[str, list[dict[str, Any]]] = {"spread": [], "hot": []}
    for _ in range(TWIN_RUNS):
        for shape in ("spread", "hot"):
            runs[shape].append(_twin_shape(shape, containers, holds))
    return runs


def bench_hot(dynamodb_url: str) -> dict[str, Any]:
    local = _local(dynamodb_url)
    twin = {n: _twin(n) for n in CONTAINERS}
    return local | {"twin": twin, "twin_holds": {n: _twin(n, holds=True) for n in CONTAINERS}}


def _row(engine: str, n: int, spread: dict[str, Any], hot: dict[str, Any]) -> str:
    ratio = hot["per_second"] / spread["per_second"]
    p99 = hot["p99_ms"] / spread["p99_ms"]
    refused = hot["statuses"].get(409, 0) + sum(v for k, v in hot["statuses"].items() if k >= 500)
    return (
        f"| {engine} | {n} | {spread['per_second']:.0f} | {hot['per_second']:.0f} | {ratio:.2f} | "
        f"{spread['p50_ms']:.1f} / {spread['p99_ms']:.1f} | {hot['p50_ms']:.1f} / {hot['p99_ms']:.1f} | {p99:.2f} | "
        f"{refused} of {hot['requests']} | {json.dumps(hot['statuses'], sort_keys=True)} |"
    )


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The repeated runs of one shape: the median of each figure, and every run's statuses."""
    statuses: Counter[int] = Counter()
    for run in runs:
        statuses.update(run["statuses"])
    figures = {name: statistics.median(run[name] for run in runs) for name in ("per_second", "p50_ms", "p99_ms")}
    return figures | {"requests": sum(run["requests"] for run in runs), "statuses": dict(statuses)}


def render(result: dict[str, Any]) -> str:
    engines = [
        ("DynamoDB Local", "runs"),
        ("twin (AWS semantics)", "twin"),
        ("twin, holds (place + capture)", "twin_holds"),
    ]
    rows = [
        _row(engine, n, _medians(shapes["spread"]), _medians(shapes["hot"]))
        for engine, key in engines
        for n, shapes in result[key].items()
    ]
    edge = result["boundary"]
    return "\n".join(
        [
            "### Hot accounts",
            "",
            f"N containers, {REQUESTS} consumes each, on one account (hot) against one account each (spread). "
            f"DynamoDB Local: processes running ConsumeFunction's handler, {LOCAL_RUNS} alternating runs of a shape. "
            f"Twin: threads, {TWIN_RUNS} alternating runs, transactions held {TWIN_TRANSACTION_MS:.0f} ms, "
            "overlapping ones cancelled, 1,000 write units/s per partition. Each figure is the median over "
            "a shape's runs, and the statuses are every run's. A contended account's consumes go to escrow slices "
            f"({SLICES}, the default). Targets: hot/spread throughput >= 0.8, p99 ratio <= 2, no 409 and no 5xx. "
            "Holds rows: each request places a hold of one image's price and captures it; on a busy "
            "account both are written on the container's escrow slice, as its consumes are; on the account "
            "itself, each is followed by the write that publishes its event, as deployed.",
            "",
            "| engine | N | spread req/s | hot req/s | hot/spread | spread p50 / p99 (ms) | hot p50 / p99 (ms) "
            "| p99 ratio | 409 + 5xx on hot | hot statuses |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Boundary (DynamoDB Local, {max(CONTAINERS)} containers): credits for {edge['covered']} of "
            f"{edge['requests']} requests; statuses {json.dumps(edge['statuses'], sort_keys=True)}; "
            f"conserved with nothing left: {edge['conserved']}.",
            "",
        ]
    )
