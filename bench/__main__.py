"""``make bench``: every benchmark in one run, printed and prepended to BENCHMARKS.md."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from bench import coldstart, consume, cost, expiry, history, hot, usage
from bench.common import STATE, instrument_pynamodb, machine, record


def main() -> int:
    from tollbooth_local.aws import MotoServer, use_offline_environment
    from tollbooth_local.dynamodb_local import DynamoDBLocal

    use_offline_environment()
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    instrument_pynamodb()
    results = []
    dynamodb_local = DynamoDBLocal(STATE / "cache").start()
    try:
        results.append(consume.bench_engine("DynamoDB Local", dynamodb_local.url, consume.ROUNDS, consume.WARMUP))
        sweep = expiry.bench_expiry(dynamodb_local.url)
        long_lived = history.bench_history(dynamodb_local.url)
        contention = hot.bench_hot(dynamodb_local.url)
        ingestion = [usage.bench_usage("DynamoDB Local", dynamodb_local.url, max_items=10)]
    finally:
        dynamodb_local.stop()
    moto = MotoServer().start()
    try:
        # moto is slow and serialized: a short run says enough.
        results.append(consume.bench_engine("moto", moto.url, min(consume.ROUNDS, 100), min(consume.WARMUP, 20)))
        ingestion.append(usage.bench_usage("moto", moto.url, max_items=100, batches=20))
    finally:
        moto.stop()
    cold = coldstart.bench_coldstart()
    # The cost model's Lambda durations: this run's handler medians on DynamoDB Local.
    costs = cost.bench_cost(
        {
            "consume": results[0]["ours"].median_ms,
            "usage batch": 1000 * usage.PER_BATCH / ingestion[0]["ours_rps"],
            "expiry write-off": 1000 * sweep["seconds"] / max(1, sweep["expired"]),
        }
    )
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join(
        [
            f"## {date}",
            "",
            f"Machine: {machine()}.",
            "",
            consume.render(results),
            coldstart.render(cold),
            expiry.render(sweep),
            history.render(long_lived),
            hot.render(contention),
            usage.render(ingestion),
            cost.render(costs),
        ]
    )
    print(section)
    record(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
