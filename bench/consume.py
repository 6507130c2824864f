"""Consume benchmark: our handler against the bare DynamoDB operation, on the same engine, in one run.

For each engine (DynamoDB Local, AWS's own engine; and moto) it measures:
* median latency and ops/s of consume through the Lambda handler (API Gateway event in,
  HTTP response out), against a bare conditional UpdateItem on the same table;
* DynamoDB requests and write capacity units per consume, counted from botocore events.
(Cold start, the handler's import and first invocation, is ``bench.coldstart``'s.)

``python -m bench`` runs this with the other benchmarks and records them together.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import COUNTER, MAX_GRANT, REPO

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "300"))
# A fresh DynamoDB Local JVM needs a few thousand requests before its JIT settles.
WARMUP = int(os.environ.get("BENCH_WARMUP", "2000"))


@dataclass
class Timing:
    median_ms: float
    ops_per_second: float


def timed(operation: Any, calls: range) -> Timing:
    """Time ``operation(n)`` for each n; distinct n mean distinct idempotency keys (no replays)."""
    latencies = []
    started = time.perf_counter()
    for n in calls:
        begin = time.perf_counter()
        operation(n)
        latencies.append(time.perf_counter() - begin)
    total = time.perf_counter() - started
    return Timing(statistics.median(latencies) * 1000, len(calls) / total)


def consume_event(account: str, key: str) -> dict[str, Any]:
    event = json.loads((REPO / "events" / "consume.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/v1/accounts/{account}/consume"
    event["pathParameters"] = {"account_id": account}
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = account
    event["headers"]["idempotency-key"] = key
    event["body"] = json.dumps({"feature": "image_generation", "quantity": 1})
    return event


def _handler_path(dynamodb_url: str) -> tuple[str, Callable[[int], None]]:
    """A fresh ledger table and a funded account; consume ``n`` through ConsumeFunction's handler."""
    from tollbooth.bootstrap import get_service, reset
    from tollbooth_local.aws import create_table
    from tollbooth_local.functions import LambdaContext, load_function
    from tollbooth_local.template import Template

    template = Template()
    table = f"bench-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_url, table, template.resources["LedgerTable"]["Properties"])
    os.environ.update(TABLE_NAME=table, AWS_ENDPOINT_URL=dynamodb_url)
    reset()
    handler = load_function(template.functions()["ConsumeFunction"])
    account = f"bench-{uuid.uuid4().hex[:6]}"
    service = get_service()
    from tollbooth.app.idempotency import Idempotency

    service.grant(account, MAX_GRANT, "promotional", "bench", None, None, Idempotency.of("fund", "grant", account, {}))
    context = LambdaContext("ConsumeFunction", 10)
    run_id = uuid.uuid4().hex[:6]

    def through_handler(n: int) -> None:
        response = handler(consume_event(account, f"{run_id}-{n}"), context)
        assert response["statusCode"] == 200, response

    return table, through_handler


def _bare_path(dynamodb_url: str, table: str) -> Callable[[int], None]:
    """The least a consume can cost: one conditional UpdateItem on the same table."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=dynamodb_url, region_name="us-east-1")
    COUNTER.attach(client.meta.events)
    client.put_item(TableName=table, Item={"pk": {"S": "bare"}, "sk": {"S": "lot"}, "remaining": {"N": str(10**15)}})

    def bare_update(_: int) -> None:
        client.update_item(
            TableName=table,
            Key={"pk": {"S": "bare"}, "sk": {"S": "lot"}},
            UpdateExpression="SET remaining = remaining - :c",
            ConditionExpression="remaining >= :c",
            ExpressionAttributeValues={":c": {"N": "1000"}},
        )

    return bare_update


def _interleaved(
    through_handler: Callable[[int], None], bare_update: Callable[[int], None], rounds: int, warmup: int
) -> tuple[Timing, Timing]:
    # Warm both paths (the engine's JIT and caches too), then interleave them in halves so
    # drift on a noisy machine hits both alike.
    for n in range(warmup):
        through_handler(-1 - n)
        bare_update(n)
    half = rounds // 2
    first, second = range(half), range(half, 2 * half)
    ours_a, bare_a = timed(through_handler, first), timed(bare_update, first)
    bare_b, ours_b = timed(bare_update, second), timed(through_handler, second)
    ours = Timing(
        statistics.mean([ours_a.median_ms, ours_b.median_ms]),
        statistics.mean([ours_a.ops_per_second, ours_b.ops_per_second]),
    )
    bare = Timing(
        statistics.mean([bare_a.median_ms, bare_b.median_ms]),
        statistics.mean([bare_a.ops_per_second, bare_b.ops_per_second]),
    )
    return ours, bare


def _request_counts(through_handler: Callable[[int], None]) -> dict[str, Any]:
    from tollbooth.bootstrap import get_service

    measured = 50
    COUNTER.reset()
    COUNTER.enabled = True
    for n in range(measured):
        through_handler(10**6 + n)
    requests = sum(COUNTER.operations.values()) / measured
    operations = {op: count / measured for op, count in COUNTER.operations.items()}
    write_units = COUNTER.write_units / measured
    # Cold: a new container each time (nothing remembered about the account).
    COUNTER.reset()
    for n in range(measured):
        get_service.cache_clear()
        through_handler(2 * 10**6 + n)
    cold_requests = sum(COUNTER.operations.values()) / measured
    COUNTER.enabled = False
    return {
        "requests_per_consume": requests,
        "cold_requests_per_consume": cold_requests,
        "operations": operations,
        "write_units_per_consume": write_units,
    }


def bench_engine(name: str, dynamodb_url: str, rounds: int, warmup: int) -> dict[str, Any]:
    table, through_handler = _handler_path(dynamodb_url)
    bare_update = _bare_path(dynamodb_url, table)
    ours, bare = _interleaved(through_handler, bare_update, rounds, warmup)
    return {
        "engine": name,
        "rounds": rounds,
        "warmup": warmup,
        "ours": ours,
        "bare": bare,
        "throughput_ratio": ours.ops_per_second / bare.ops_per_second,
        **_request_counts(through_handler),
    }


def render(results: list[dict[str, Any]]) -> str:
    lines = [
        "### Consume",
        "",
        "Sequential calls per path after warm-up calls, interleaved in halves; medians. "
        "A consume is a full Lambda invocation of ConsumeFunction (API Gateway event in, response out).",
        "",
        "| engine (calls, warm-up) | consume via handler: median ms | ops/s "
        "| bare conditional UpdateItem: median ms | ops/s | throughput ratio (target >= 0.5) "
        "| DynamoDB requests per consume (target <= 2) | write units per consume |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ops = ", ".join(f"{name} {count:g}" for name, count in sorted(r["operations"].items()))
        lines.append(
            f"| {r['engine']} ({r['rounds']}, {r['warmup']}) "
            f"| {r['ours'].median_ms:.2f} | {r['ours'].ops_per_second:.0f} "
            f"| {r['bare'].median_ms:.2f} | {r['bare'].ops_per_second:.0f} | {r['throughput_ratio']:.2f} "
            f"| warm {r['requests_per_consume']:g} ({ops}), cold {r['cold_requests_per_consume']:g} "
            f"| {r['write_units_per_consume'] or 'not reported'} |"
        )
    lines.append("")
    return "\n".join(lines)
