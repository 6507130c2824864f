"""DynamoDB's on-demand billing rules, the prices, and a twin of the store that meters itself.

The rules, as AWS documents them (developer guide and "How AWS Pricing Works"):

- a transactional write costs 2 write request units (WRU) per started 1 KB of each item
  it writes, a single PutItem, UpdateItem or DeleteItem 1; for an update or a delete (or
  a put that replaces an item) the size that counts is the larger of the item before and
  after;
- a global secondary index is written besides the table whenever the item is in the index
  before or after: putting or updating the index entry costs 1 WRU per started KB of the
  entry, a change of the index key is a delete and a put (both paid), and a removal from
  the index costs the entry it removes. The ExpiryIndex projects ALL attributes, so its
  entry is the account item (sized like the table item; sparse: only items holding both
  ``expiry_shard`` and ``next_due_at`` are in it). Index writes are not transactional;
- a strongly consistent read costs 1 read request unit (RRU) per started 4 KB: a GetItem
  of the item it returns, a Query of the total size of the items it returns (at least one
  unit per request); a transactional read costs double (Tollbooth makes none).

``MeteredStore`` is the in-memory twin (``adapters.memory.MemoryStore``) recording, for
each transaction it applies, every item as it stood before and after, and for each read
the items it returned: the bill is computed from those sizes, never estimated.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tollbooth.adapters.keys import Keys
from tollbooth.adapters.memory import MemoryStore
from tollbooth.adapters.memory_items import Item, item_size
from tollbooth.adapters.memory_transactions import written
from tollbooth.app.ports import WriteConflict
from tollbooth.domain.hold_state import DueHold
from tollbooth.domain.ledger import Account, IdempotencyRecord, Mutation

# us-east-1 list prices, as used on "as_of" (DynamoDB's on-demand throughput prices were
# halved to these on 2024-11-01). Lambda: arm64, the first 6 billion GB-s a month.
PRICES: dict[str, Any] = {
    "as_of": "2026-11-25",
    "region": "us-east-1",
    "dynamodb_per_million_wru": 0.625,  # on-demand write request units
    "dynamodb_per_million_rru": 0.125,  # on-demand read request units
    "lambda_arm64_per_gb_second": 0.0000133334,
    "lambda_per_million_requests": 0.20,
    "http_api_per_million_requests": 1.00,  # the first 300 million a month
    "sqs_per_million_requests": 0.40,  # standard queue, after the free tier; 64 KB chunks
}

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
INDEX = "ExpiryIndex entry"
LABELS = {
    "account": "account item",
    "lot": "lot",
    "entry": "ledger entry",
    "idempotency": "idempotency record",
    "payment": "payment record",
    "intent": "intent",
}


def started(size: int, unit: int) -> int:
    """Units of ``unit`` bytes an item of ``size`` bytes starts (at least one)."""
    return max(1, math.ceil(size / unit))


def transactional_write_units(before: int | None, after: int | None) -> int:
    """WRU for one item of a transactional write: 2 per started KB of the larger version."""
    return 2 * started(max(before or 0, after or 0), WRITE_UNIT_BYTES)


def standard_write_units(before: int | None, after: int | None) -> int:
    """WRU for a single conditional write (PutItem, UpdateItem, DeleteItem): 1 per started
    KB of the larger version."""
    return started(max(before or 0, after or 0), WRITE_UNIT_BYTES)


def index_write_units(before: int | None, after: int | None, key_changed: bool, changed: bool = True) -> int:
    """WRU for the index entry of one item: sizes are of the entry before and after (None:
    not in the index)."""
    if before is None and after is None:
        return 0
    if before is None:
        return started(after or 0, WRITE_UNIT_BYTES)  # put
    if after is None:
        return started(before, WRITE_UNIT_BYTES)  # removal
    if key_changed:
        return started(before, WRITE_UNIT_BYTES) + started(after, WRITE_UNIT_BYTES)  # delete + put
    return started(max(before, after), WRITE_UNIT_BYTES) if changed else 0


def read_units(sizes: list[int]) -> int:
    """RRU for one strongly consistent GetItem or Query returning items of these sizes."""
    return started(sum(sizes), READ_UNIT_BYTES)


def _indexed(item: Item | None) -> bool:
    return item is not None and "expiry_shard" in item and "next_due_at" in item


@dataclass(frozen=True)
class ItemWrite:
    """One item of a transaction, as it stood before and after (sizes in bytes; None: absent)."""

    kind: str
    pk: str
    before: int | None
    after: int | None
    index_before: int | None = None
    index_after: int | None = None
    index_key_changed: bool = False
    changed: bool = True

    @classmethod
    def of(cls, before: Item | None, after: Item | None) -> ItemWrite:
        either = after if after is not None else before
        assert either is not None, "an item is written or deleted"
        size_before = None if before is None else item_size(before)
        size_after = None if after is None else item_size(after)
        keys = ("expiry_shard", "next_due_at")
        moved = _indexed(before) and _indexed(after) and any(before[k] != after[k] for k in keys)  # type: ignore[index]
        return cls(
            kind=LABELS.get(str(either.get("type")), str(either.get("type", "item"))),
            pk=either["pk"],
            before=size_before,
            after=size_after,
            index_before=size_before if _indexed(before) else None,
            index_after=size_after if _indexed(after) else None,
            index_key_changed=moved,
            changed=before != after,
        )

    @property
    def table_units(self) -> int:
        return transactional_write_units(self.before, self.after)

    @property
    def index_units(self) -> int:
        return index_write_units(self.index_before, self.index_after, self.index_key_changed, self.changed)


@dataclass
class Transaction:
    """What one write request wrote: a TransactWriteItems, or, for a change of one item
    alone, the single conditional write the store sends instead (``single``: its name)."""

    writes: list[ItemWrite]
    cancelled: bool = False  # a guard failed: billed here as if it wrote (an upper bound)
    single: str | None = None  # PutItem, UpdateItem or DeleteItem

    @property
    def operation(self) -> str:
        return self.single or "TransactWriteItems"

    def breakdown(self) -> Counter[str]:
        """WRU by what was written: each kind of item, and the index entry."""
        units: Counter[str] = Counter()
        for write in self.writes:
            units[write.kind] += standard_write_units(write.before, write.after) if self.single else write.table_units
            if write.index_units:
                units[INDEX] += write.index_units
        return units

    @property
    def write_units(self) -> int:
        return sum(self.breakdown().values())

    def partition_units(self, pk: str) -> int:
        """WRU this transaction spends on one partition of the table (index writes excluded)."""
        return sum(write.table_units for write in self.writes if write.pk == pk)


@dataclass(frozen=True)
class Read:
    operation: str  # GetItem | Query
    sizes: tuple[int, ...]

    @property
    def read_units(self) -> int:
        return read_units(list(self.sizes))


@dataclass
class Metered:
    """What one operation sent to DynamoDB: its transactions and its reads."""

    transactions: list[Transaction] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)

    def requests(self) -> Counter[str]:
        counted: Counter[str] = Counter(read.operation for read in self.reads)
        counted.update(transaction.operation for transaction in self.transactions)
        return +counted

    def breakdown(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for transaction in self.transactions:
            total.update(transaction.breakdown())
        return total

    @property
    def write_units(self) -> int:
        return sum(transaction.write_units for transaction in self.transactions)

    @property
    def read_units(self) -> int:
        return sum(read.read_units for read in self.reads)


class MeteredStore(MemoryStore):
    """The twin, recording what each transaction writes and each read returns."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = Metered()

    def take(self) -> Metered:
        """What was sent since the last take."""
        taken, self.log = self.log, Metered()
        return taken

    def apply(self, mutation: Mutation, now: int) -> None:
        ops = self._operations(mutation, now)
        # The Repository writes a change of one item as one conditional write, not a transaction.
        single = None if len(ops) != 1 else _single_write(ops[0])
        with self._lock:
            before = [self._stored(op.key) for op in ops]
        try:
            super().apply(mutation, now)
        except WriteConflict:
            writes = [ItemWrite.of(b, written(op, b)) for op, b in zip(ops, before, strict=True) if b or op.item]
            self.log.transactions.append(Transaction(writes, cancelled=True, single=single))
            raise
        with self._lock:
            after = [self._stored(op.key) for op in ops]
        writes = [ItemWrite.of(b, a) for b, a in zip(before, after, strict=True) if b is not None or a is not None]
        self.log.transactions.append(Transaction(writes, single=single))

    def load_account(self, account_id: str) -> Account:
        with self._lock:
            partition = self._partitions.get(Keys.account(account_id), {})
            sizes = [item_size(v) for sk, v in partition.items() if Keys.ACCOUNT_SK <= sk <= Keys.ACCOUNT_RANGE_END]
        self.log.reads.append(Read("Query", tuple(sizes)))
        return super().load_account(account_id)

    def load_expiry_view(self, account_id: str, now: int | None = None) -> Account | None:
        self._get((Keys.account(account_id), Keys.ACCOUNT_SK))
        return super().load_expiry_view(account_id, now)

    def find_idempotency_record(self, account_id: str, key: str) -> IdempotencyRecord | None:
        self._get(Keys.idempotency(account_id, key))
        return super().find_idempotency_record(account_id, key)

    def accounts_due(self, shard: int, now: int, page_size: int = 100) -> Iterator[Account | DueHold]:
        with self._lock:
            due = [key for key, at in self._due.get(Keys.expiry_shard_key(shard), {}).items() if at <= now]
            sizes = [item_size(self._partitions[pk][sk]) for pk, sk in due]
        self.log.reads.append(Read("Query", tuple(sizes)))
        yield from super().accounts_due(shard, now, page_size)

    def _get(self, key: tuple[str, str]) -> None:
        with self._lock:
            item = self._stored(key)
        self.log.reads.append(Read("GetItem", () if item is None else (item_size(item),)))


def _single_write(op: Any) -> str:
    """The request the Repository sends for a change of this one item."""
    return "DeleteItem" if op.deletes else "PutItem" if op.item is not None else "UpdateItem"
