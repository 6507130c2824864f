"""Usage benchmark: the SQS consumer's handler against bare writes, on the same engine.

A batch is one invocation of UsageFunction's handler with an SQS event of 10 messages,
one usage record each: either all for one account (a hot account) or for 10 accounts.
It reports records per second through the handler, against one bare PutItem per record
(the least a record can cost to store), and the DynamoDB write requests per record.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.common import COUNTER, MAX_GRANT, REPO

BATCHES = int(os.environ.get("BENCH_USAGE_BATCHES", "60"))
PER_BATCH = 10


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    template = json.loads((REPO / "events" / "usage.json").read_text())["Records"][0]
    return {
        "Records": [
            {
                **template,
                "messageId": str(uuid.uuid4()),
                "body": json.dumps({"schema": "tollbooth.usage/v1", "records": [record]}),
            }
            for record in records
        ]
    }


def record(account: str) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "account_id": account,
        "feature": "text_generation",
        "quantity": 500,
        "occurred_at": datetime.now(UTC).isoformat(),
        "worker_id": "bench",
        "tokens_in": 100,
        "tokens_out": 700,
    }


@dataclass(frozen=True)
class _Rig:
    """A fresh ledger table, UsageFunction's handler on it, and funded accounts."""

    table: str
    handler: Callable[[dict[str, Any], Any], Any]
    context: Any
    hot: str
    spread: list[str]


def _rig(dynamodb_url: str, max_items: int) -> _Rig:
    from tollbooth.app.idempotency import Idempotency
    from tollbooth.bootstrap import get_service, reset
    from tollbooth_local.aws import create_table
    from tollbooth_local.functions import LambdaContext, load_function
    from tollbooth_local.template import Template

    template = Template()
    table = f"bench-usage-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_url, table, template.resources["LedgerTable"]["Properties"])
    # No record here is rejected and no account runs short: the DLQ and the bus are never called.
    os.environ.update(
        TABLE_NAME=table,
        AWS_ENDPOINT_URL=dynamodb_url,
        MAX_TRANSACTION_ITEMS=str(max_items),
        USAGE_DLQ_URL="http://unused/dlq",
        EVENT_BUS_NAME="unused",
    )
    reset()
    handler = load_function(template.functions()["UsageFunction"])
    context = LambdaContext("UsageFunction", 30)
    run = uuid.uuid4().hex[:6]
    hot = f"hot-{run}"
    spread = [f"acct-{run}-{n}" for n in range(PER_BATCH)]
    service = get_service()
    for account in [hot, *spread]:
        service.grant(account, MAX_GRANT, "promotional", "bench", None, None, Idempotency.of("f", "grant", account, {}))
    return _Rig(table, handler, context, hot, spread)


def _through_handler(rig: _Rig, accounts: list[str]) -> float:
    started = time.perf_counter()
    result = rig.handler(sqs_event([record(account) for account in accounts]), rig.context)
    assert result == {"batchItemFailures": []}, result
    return time.perf_counter() - started


def _bare_puts(client: Any, rig: _Rig) -> float:
    started = time.perf_counter()
    for _ in range(PER_BATCH):
        item = {
            "pk": {"S": f"bare-{uuid.uuid4().hex}"},
            "sk": {"S": "usage"},
            "body": {"S": json.dumps(record(rig.hot))},
        }
        client.put_item(TableName=rig.table, Item=item)
    return time.perf_counter() - started


def _writes_per_record(rig: _Rig, accounts: list[str]) -> float:
    COUNTER.reset()
    COUNTER.enabled = True
    for _ in range(10):
        _through_handler(rig, accounts)
    COUNTER.enabled = False
    writes = sum(COUNTER.operations[op] for op in ("TransactWriteItems", "PutItem", "UpdateItem"))
    return writes / (10 * PER_BATCH)


def bench_usage(name: str, dynamodb_url: str, max_items: int, batches: int = BATCHES) -> dict[str, Any]:
    import boto3

    rig = _rig(dynamodb_url, max_items)
    client = boto3.client("dynamodb", endpoint_url=dynamodb_url, region_name="us-east-1")
    hot_batch = [rig.hot] * PER_BATCH
    for _ in range(10):  # warm both paths
        _through_handler(rig, hot_batch)
        _bare_puts(client, rig)
    ours = sum(_through_handler(rig, hot_batch) for _ in range(batches))
    bare = sum(_bare_puts(client, rig) for _ in range(batches))
    return {
        "engine": name,
        "max_items": max_items,
        "records": batches * PER_BATCH,
        "ours_rps": batches * PER_BATCH / ours,
        "bare_rps": batches * PER_BATCH / bare,
        "shared_writes": _writes_per_record(rig, hot_batch),
        "distinct_writes": _writes_per_record(rig, rig.spread),
    }


def render(results: list[dict[str, Any]]) -> str:
    lines = [
        "### Usage ingestion",
        "",
        f"A batch is one invocation of UsageFunction's handler with {PER_BATCH} SQS messages of one record each. "
        "Bare: one PutItem per record.",
        "",
        "| engine (items per transaction) | records/s via handler, hot account | bare PutItem records/s | ratio "
        "| write requests per record, 10 share an account (target <= 0.2) | ... 10 accounts |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['engine']} ({r['max_items']}) | {r['ours_rps']:.0f} | {r['bare_rps']:.0f} "
            f"| {r['ours_rps'] / r['bare_rps']:.2f} | {r['shared_writes']:.2f} | {r['distinct_writes']:.2f} |"
        )
    lines += [
        "",
        "Records of one account in a batch share one transaction: the account item, one `usage` ledger entry "
        "listing them, an idempotency record each, and the lots drawn. DynamoDB takes 100 items per transaction; "
        "the DynamoDB Local build used here takes 10, so it needs two transactions for 10 records.",
        "",
    ]
    return "\n".join(lines)
