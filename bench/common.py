"""What the benchmarks share: counting DynamoDB requests and items, the machine, the record."""

from __future__ import annotations

import os
import platform
import threading
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".local"
RESULTS = REPO / "BENCHMARKS.md"
# Funds for a benchmark account: the most one grant may create (the catalog's default max_grant).
MAX_GRANT = 1_000_000_000


class Discard:
    """A publisher and a dead-letter queue that only count what reaches them."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()  # the sweep publishes from a thread per shard

    def publish(self, events: Any) -> None:
        with self._lock:
            self.count += len(events)

    def send(self, body: str, reasons: list[str], source_message_id: str) -> None:
        with self._lock:
            self.count += 1


class DynamoDBCounter:
    """Counts DynamoDB operations and consumed write units through botocore's event system."""

    def __init__(self) -> None:
        self.operations: Counter[str] = Counter()
        self.write_units = 0.0
        self.items_read = 0
        self.enabled = False  # off while timing: asking for capacity has a cost of its own
        self._lock = threading.Lock()  # calls come from several threads (the sweep's shards)

    def attach(self, events: Any) -> None:
        events.register("provide-client-params.dynamodb.*", self._ask_for_capacity)
        events.register("after-call.dynamodb.*", self._count)

    def _ask_for_capacity(self, params: dict[str, Any], **_: Any) -> None:
        if self.enabled:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def _count(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._add(model, parsed)

    def _add(self, model: Any, parsed: dict[str, Any]) -> None:
        self.operations[model.name] += 1
        # Items a read returned: Query and Scan say how many; a GetItem returns one or none.
        if "Count" in parsed:
            self.items_read += int(parsed["Count"])
        elif model.name == "GetItem" and parsed.get("Item"):
            self.items_read += 1
        capacity = parsed.get("ConsumedCapacity")
        for item in capacity if isinstance(capacity, list) else [capacity] if capacity else []:
            self.write_units += item.get("WriteCapacityUnits", 0) or 0

    def reset(self) -> None:
        self.operations.clear()
        self.write_units = 0.0
        self.items_read = 0


COUNTER = DynamoDBCounter()


def instrument_pynamodb() -> None:
    """PynamoDB makes its own botocore sessions; count their calls too."""
    import pynamodb.connection.base as base

    original = base.get_session

    def instrumented() -> Any:
        session = original()
        COUNTER.attach(session)
        return session

    base.get_session = instrumented  # type: ignore[assignment]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}"
    )


HEADER = """# Benchmarks

Produced by `make bench`; newest first. Each ratio is measured side by side in one run on
one engine, so it holds across machines better than the absolute figures do.

- *Consume via handler* is a full invocation of ConsumeFunction's Lambda handler: an API
  Gateway event in, Powertools routing and validation, pricing, allocation, one
  version-guarded TransactWriteItems (account, ledger entry, idempotency record, lot),
  the HTTP response out. A container that wrote the account last skips the read, so a warm
  uncontended consume is 1 request and a cold one 2.
- *Bare conditional UpdateItem* is the least a debit can cost: one boto3 UpdateItem with a
  condition, no ledger, no idempotency.
- moto is a Python emulation, run one DynamoDB request at a time; its figures describe
  moto, not Tollbooth. DynamoDB Local is AWS's own engine and the one to read.
- *Cold start* is a function's import, init and first invocation in a fresh interpreter, in
  a site holding only the layers and boto3 as the runtime ships it, with tracing on as
  deployed; the first invocation makes its real store calls (moto on loopback).

"""


def record(section: str) -> None:
    header = HEADER
    previous = RESULTS.read_text().removeprefix(header) if RESULTS.exists() else ""
    RESULTS.write_text(header + section + "\n" + previous)
