"""The cost model's section of BENCHMARKS.md (``bench.cost`` measures; this writes it up)."""

from __future__ import annotations

import statistics
from typing import Any

from bench.billing import INDEX, PRICES, Metered
from bench.cost import AWS_REQUEST_MS, GOALS, LARGEST_BATCH, PARTITION_WRU_PER_SECOND, TRANSACTION_MS, Operation
from bench.cost import dollars as priced

SOURCES = (
    "Rules: a transactional write costs 2 WRU per started KB of each item (a change of one item alone is one "
    "conditional PutItem, UpdateItem or DeleteItem: 1 WRU per started KB), for an update or delete the larger of "
    'before and after (DynamoDB developer guide, read/write capacity; "How AWS Pricing Works", DynamoDB); a GSI '
    "write when the item is in the index before or after, 1 WRU per KB of the entry, a key change a delete and a put "
    "(developer guide, GSI writes); a strongly consistent GetItem 1 RRU per started 4 KB of the item, a Query of the "
    "total size it returns (developer guide, provisioned throughput)."
)


def _n(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")


def _items(metered: Metered, per: int = 1) -> str:
    parts = sorted(metered.breakdown().items(), key=lambda kv: (kv[0] == INDEX, -kv[1], kv[0]))
    return ", ".join(f"{name} {_n(units / per)}" for name, units in parts) or "none"


def _requests(metered: Metered, per: int = 1) -> str:
    counted = metered.requests()
    cancelled = sum(t.cancelled for t in metered.transactions)
    text = ", ".join(f"{name} {_n(count / per)}" for name, count in sorted(counted.items()))
    return text + (" (cancelled)" if cancelled else "")


def _operations(result: dict[str, Any]) -> list[str]:
    memory = result["settings"]["memory_mb"]
    lines = [
        "| operation | DynamoDB requests | WRU | RRU | WRU by item | Lambda ms: measured | billed (+ requests x "
        f"{AWS_REQUEST_MS:g}) | $/M DynamoDB | $/M Lambda | $/M API Gateway | $/M SQS | **$/M total** |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    op: Operation
    for op in result["operations"]:
        cost = priced(op, memory.get(_function(op), result["settings"]["global_memory_mb"]))
        lines.append(
            f"| {op.name} | {_requests(op.metered, op.per)} | {_n(op.wru)} | {_n(op.rru)} "
            f"| {_items(op.metered, op.per)} | {_n(op.measured_ms)} | {op.billed_ms} "
            f"| {cost['DynamoDB']:.2f} | {cost['Lambda']:.3f} | {cost['API']:.2f} | {cost['SQS']:.2f} "
            f"| **{sum(cost.values()):.2f}** |"
        )
    return lines


def _function(op: Operation) -> str:
    return "PurchaseFunction" if op.name.startswith("purchase") else op.function


def _goals(result: dict[str, Any]) -> list[str]:
    growth = result["growth"]
    worst = max(growth, key=lambda g: (g["two"].write_units, g["live"]))
    hot, largest = result["hot_usage"], result["largest"]
    modelled = result["hot"][0]
    rows = [
        (
            f"consume drawing <= 2 lots, any live lots (0 to {growth[-1]['live']} live expiring)",
            GOALS["consume_wru"],
            float(worst["two"].write_units),
            False,
            f"worst: 2 lots with {worst['live']} live expiring lots: {_items(worst['two'])}; "
            f"1 lot, no expiring lots: {_items(growth[0]['one'])}; the draws are kept on the account item "
            f"(docs/scale.md); {_drain_said(result['drains'])}",
        ),
        (
            "consume, mean over the worst drain (a new lot every 2.5 consumes), later lot writes included",
            GOALS["consume_wru"],
            statistics.mean(result["drains"][0]["units"]),
            False,
            "each lot's item leaves the store once, 2 WRU, as it did when every draw was written on its lot; the "
            "draws in between cost nothing on the lots (below)",
        ),
        (
            f"WRU per usage record, hot account (batch of {hot.per}; of {largest.per})",
            GOALS["usage_wru_per_record"],
            hot.wru,
            False,
            f"per record, batch of {hot.per}: {_items(hot.metered, hot.per)}; of {largest.per}: "
            f"{_items(largest.metered, largest.per)}",
        ),
        (
            f"usage records/s for one account through SQS (batch of {modelled['records']})",
            GOALS["hot_records_per_second"],
            modelled["sustained"],
            True,
            f"{_n(modelled['partition_wru'])} WRU per transaction on the account's partition; transactions on the "
            f"account item serialised at {TRANSACTION_MS[1]:g} ms; batch of {result['hot'][1]['records']}: "
            f"{_n(result['hot'][1]['sustained'])} (partition bound)",
        ),
    ]
    lines = ["| goal | target | modelled | met | short by | what costs what |", "|---|---|---|---|---|---|"]
    for name, target, value, at_least, why in rows:
        met = value >= target if at_least else value <= target
        gap = "" if met else f"{_n(abs(value - target))} ({abs(value - target) / target:.0%})"
        bound = ">=" if at_least else "<="
        lines.append(f"| {name} | {bound} {_n(target)} | {_n(value)} | {'yes' if met else '**no**'} | {gap} | {why} |")
    return lines


def _drain_said(drains: list[dict[str, Any]]) -> str:
    kept = drains[0]
    return (
        f"a consume that settles older draws adds each lot's item, 2 WRU (the worst drain, below: median "
        f"{_n(statistics.median(kept['units']))}, mean {_n(statistics.mean(kept['units']))}, max "
        f"{_n(max(kept['units']))})"
    )


def _drains(result: dict[str, Any]) -> list[str]:
    lines = [
        f"A consume writes {len(result['growth'][0]['two'].transactions[0].writes)} items (account, entry, "
        "idempotency record) however many lots it draws: what it draws from each lot is kept on the account "
        "item, and the lot's item is written only when something else writes it (a write-off, a transfer, a "
        "lot made again) or when more lots than the limit have such draws, the oldest first "
        "(`domain.unsettled`, docs/scale.md).",
        "",
        "The worst case for those later writes: consumes of 2 credits through 40 lots of 5, due one after "
        "another before 64 larger lots (a new lot every 2.5 consumes), run with the draws kept and with "
        "every draw written on its lot:",
        "",
        "| draws kept on the account item | consumes | WRU per consume: median | mean | max "
        "| the most costly | account item bytes after |",
        "|---|---|---|---|---|---|---|",
    ]
    for drain in result["drains"]:
        units = drain["units"]
        kept = f"up to {drain['limit']} lots" if drain["limit"] else "none (every draw written on its lot)"
        lines.append(
            f"| {kept} | {len(units)} | {_n(statistics.median(units))} | {_n(statistics.mean(units))} "
            f"| {_n(max(units))} | {_items(drain['worst'])} | {drain['bytes']:,} |"
        )
    kept, written = result["drains"]
    ratio = statistics.mean(kept["units"]) / statistics.mean(written["units"])
    lines += ["", f"Mean WRU per consume, kept / written: **{ratio:.2f}** (same run, same consumes)."]
    return lines


def _growth(result: dict[str, Any]) -> list[str]:
    lines = [
        "| live expiring lots | account item bytes | consume, 1 lot: WRU | of which account item + index "
        "| consume, 2 lots: WRU | of which account item + index | cold load Query: items, RRU |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in result["growth"]:
        one, two = g["one"].breakdown(), g["two"].breakdown()
        cold = g["cold"].reads[0]
        lines.append(
            f"| {g['live']} | {g['account_bytes']:,} | {g['one'].write_units} "
            f"| {one['account item']} + {one[INDEX]} | {g['two'].write_units} "
            f"| {two['account item']} + {two[INDEX]} | {len(cold.sizes)}, {cold.read_units} |"
        )
    return lines


def _hot(result: dict[str, Any]) -> list[str]:
    settings = result["settings"]
    concurrency = settings["max_concurrency"]
    said = (
        f"MaximumConcurrency {concurrency} (template.yaml, UsageEventSource ScalingConfig)"
        if concurrency is not None
        else "MaximumConcurrency is **missing** from template.yaml's UsageEventSource: assumed 2, the least allowed"
    )
    lines = [
        f"One account's records, {said}; a partition takes {PARTITION_WRU_PER_SECOND:,} WRU/s (the account's "
        "partition holds its item, lots and entries; idempotency records have partitions of their own); a transaction "
        f"holds the account item {TRANSACTION_MS[0]:g} to {TRANSACTION_MS[1]:g} ms on AWS (assumed), and "
        "transactions on one item do not overlap, so at best one commits after another.",
        "",
        "| records per batch (transactions) | WRU per transaction on the account's partition | partition bound, "
        "records/s | serialised bound, records/s (at 25 ms / 10 ms) | consumers bound, records/s "
        "(concurrency x batch / billed duration) | sustained, records/s (25 ms / 10 ms) |",
        "|---|---|---|---|---|---|",
    ]
    for h in result["hot"]:
        lines.append(
            f"| {h['records']} ({h['transactions']}) | {h['partition_wru']} | {_n(h['partition'])} "
            f"| {_n(h['serialised_slow'])} / {_n(h['serialised_fast'])} | {_n(h['concurrency'])} "
            f"| **{_n(h['sustained'])}** / {_n(h['best'])} |"
        )
    return lines


def _prices(settings: dict[str, Any]) -> str:
    return (
        f"Prices ({PRICES['region']}, list prices as of {PRICES['as_of']}): DynamoDB on-demand "
        f"${PRICES['dynamodb_per_million_wru']:.3f} per million WRU, ${PRICES['dynamodb_per_million_rru']:.3f} per "
        f"million RRU; Lambda arm64 ${PRICES['lambda_arm64_per_gb_second']:.10f} per GB-s and "
        f"${PRICES['lambda_per_million_requests']:.2f} per million requests ({settings['global_memory_mb']} MB, "
        f"template.yaml Globals); HTTP API ${PRICES['http_api_per_million_requests']:.2f} per million requests; "
        f"SQS ${PRICES['sqs_per_million_requests']:.2f} per million requests."
    )


def render_cost(result: dict[str, Any]) -> str:
    settings = result["settings"]
    measured = result["measured"]
    source = (
        f"handler medians from this run on DynamoDB Local for {', '.join(measured)}; the use case timed in process "
        "on the twin for the rest"
        if measured
        else "the use case timed in process on the twin (no handler, no network)"
    )
    return "\n".join(
        [
            "### Cost model",
            "",
            "Request units per operation under DynamoDB on-demand billing, from the items each transaction wrote "
            "and each read returned (sized as stored), running the real use cases on the in-memory twin; then "
            "dollars per million operations. " + SOURCES,
            "",
            _prices(settings),
            "",
            f"Lambda duration: {source}, plus {AWS_REQUEST_MS:g} ms per DynamoDB request for AWS's latency (the "
            "high end of the assumed 10 to 25 ms), rounded up to the ms. A warm consume is one request (the "
            "container wrote the account last); a cold container adds the Query. A usage record carries its "
            "share of a batch's invocation; SQS: SendMessageBatch per 10 records on the producer side, one "
            "ReceiveMessage and one DeleteMessageBatch per batch on the consumer side (idle polling not counted). "
            "The sweep's invocation is shared by every lot of a run: only its duration is counted per lot, and "
            f"the {result['sweep_queries']} shard Queries that find nothing are per run (one a shard, every 15 "
            "minutes). A cancelled transaction is billed here as if it had written (an upper bound). An "
            "operation that leaves events in the account's outbox (a refund, a hold on the account) includes "
            "the guarded write that empties it once they are published, right after the request, as deployed; "
            "EventBridge's PutEvents is not counted.",
            "",
            *_operations(result),
            "",
            "Goals (issue 13):",
            "",
            *_goals(result),
            "",
            *_drains(result),
            "",
            "A consume's cost against the live expiring lots the account item summarises (at most 6, the soonest "
            "due): each rewrite of the account item writes it and, once the account holds expiring lots, its "
            "ExpiryIndex entry (ALL attributes projected). Two lots: the first one, due soonest, runs out, so the "
            "index key moves (a delete and a put).",
            "",
            *_growth(result),
            "",
            *_hot(result),
            "",
            f"The largest batch of one account that fits one transaction ({LARGEST_BATCH} records: 100 items less "
            "the account, the entry and the lots drawn) takes the per-record cost down to "
            f"{_n(result['largest'].wru)} WRU. The idempotency records cost 2 WRU each, whatever the batch: they are "
            "written in the transaction, so that a record is charged once and only with its charge. The `usage` "
            "entry lists every record; past 1 KB its details are stored compressed (zlib), a tenth or less of "
            "their JSON, so it adds little to the record and to the account's partition.",
            "",
        ]
    )
