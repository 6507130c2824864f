"""An in-memory LedgerStore: a twin of the DynamoDB ``Repository`` for tests and benchmarks.

It keeps the Repository's items (same keys and encodings) and checks the same guards, in
the same order, with the same WriteConflict reasons. Where DynamoDB on AWS is stricter than
the local engines, so is the twin: the transaction item limit, 400 KB per item and 4 MB per
transaction (DynamoDB's ValidationException), overlapping transactions on one item
(``transaction_ms``: AWS's TransactionConflict, a ``WriteConflict(VERSION)``), and, when
``partition_write_units_per_second`` is set, per-partition throughput (throttling). Its
expiry index is read-after-write consistent, where a GSI is eventually consistent.
DEVELOPERS.md says more.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from tollbooth.adapters.keys import Keys
from tollbooth.adapters.lot_attributes import (
    lot_from_attributes,
)
from tollbooth.adapters.memory_items import (
    Item,
    account_from_item,
    account_item,
    entry_from_item,
    entry_item,
    hold_from_item,
    hold_item,
    intent_item,
    item_size,
    lot_item,
    record_item,
    slice_from_item,
    slice_item,
    stored_item,
)
from tollbooth.adapters.memory_transactions import Operation, conflict_of, passes, spill_operations, written
from tollbooth.app.ports import LedgerPage, PaymentRecord, WriteConflict
from tollbooth.domain.errors import ChangeTooLarge, StorageUnavailable, StoreBusy, TollboothError
from tollbooth.domain.expiry import ExpiryIndexing
from tollbooth.domain.hold_state import DueHold, Hold, newest_holds
from tollbooth.domain.ledger import Account, IdempotencyRecord, LedgerEntry, Mutation, Slice
from tollbooth.domain.unsettled import draws_fit, settlement

SNAPSHOT_TRIES, SNAPSHOT_BACKOFF_SECONDS = 4, 0.01  # as the Repository reads an account with slices
MAX_ITEM_BYTES = 400 * 1024
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
FAILED = "the ledger store failed; retry the request"  # the Repository's words

VERSION = WriteConflict.VERSION

Key = tuple[str, str]


class DynamoDBError(Exception):
    """What DynamoDB on AWS would have answered: the cause of the error the Repository raises."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _refused(code: str, message: str) -> TollboothError:  # as the Repository reports them
    error: TollboothError = ChangeTooLarge() if code == "ValidationException" else StorageUnavailable(FAILED)
    if code == "ThrottlingException":
        error = StoreBusy("the ledger store is throttled; retry the request")
    error.__cause__ = DynamoDBError(code, message)
    return error


def _put_guarded(item: Item, version: int) -> Operation:
    """A put guarded by the version it replaces (a new item: by its absence)."""
    return Operation((item["pk"], item["sk"]), "absent" if version == 0 else "version", VERSION, item, version)


class MemoryStore:
    """A LedgerStore in memory that answers as the DynamoDB Repository does on AWS."""

    def __init__(
        self,
        expiry: ExpiryIndexing | None = None,
        max_transaction_items: int = 100,
        *,
        transaction_ms: float = 0,
        partition_write_units_per_second: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.expiry = expiry or ExpiryIndexing()
        self.max_transaction_items = max_transaction_items
        self.transaction_ms = transaction_ms
        self.partition_write_units_per_second = partition_write_units_per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._partitions: dict[str, dict[str, Item]] = {}
        self._due: dict[str, dict[Key, int]] = {}  # the sparse expiry index: shard -> key -> next_due_at
        self._in_flight: set[Key] = set()
        self._units: dict[str, tuple[int, int]] = {}  # pk -> (second, write units used in it)
        self.writes = self.reads = self.conflicts = self.throttled = 0

    # -- reads ---------------------------------------------------------------------

    def connect(self) -> None:
        """Nothing to make: the twin has no clients."""

    def load_account(self, account_id: str) -> Account:
        """As the Repository reads it: the account, its lots, intent and slices, then its
        version again, until the account stood still (a new account reads as empty)."""
        for attempt in range(SNAPSHOT_TRIES):
            account = self._load(account_id)
            item = self._read((Keys.account(account_id), Keys.ACCOUNT_SK)) if account.streams else None
            if item is None or item["version"] == account.version:
                return account
            time.sleep(random.uniform(0, SNAPSHOT_BACKOFF_SECONDS * 2**attempt))
        return replace(account, consistent=False)

    def load_own(self, account_id: str) -> Account:
        return self._load(account_id, slices=False)

    def _load(self, account_id: str, *, slices: bool = True) -> Account:
        with self._lock:
            self.reads += 1
            partition = self._partitions.get(Keys.account(account_id), {})
            items = [partition[sk] for sk in sorted(partition) if Keys.ACCOUNT_SK <= sk <= Keys.ACCOUNT_RANGE_END]
        kinds: dict[str, list[Item]] = {}
        for item in items:
            kinds.setdefault(item["type"], []).append(item)
        if "account" not in kinds:
            return Account(account_id=account_id)
        lots = tuple(lot_from_attributes(item) for item in kinds.get("lot", []))
        item = kinds["account"][0]
        streams = json.loads(item.get("streams", "[]")) if slices else []
        held = tuple(self.load_slice(account_id, index).slice(index) for index in streams)
        return account_from_item(item, lots, next(iter(kinds.get("intent", [])), None), held)

    def load_slice(self, account_id: str, index: int) -> Account:
        """One escrow slice alone (a new slice reads as empty)."""
        item = self._read((Keys.slice(account_id, index), Keys.SLICE_SK))
        return Account(account_id, slices=(Slice(index) if item is None else slice_from_item(item),))

    def entry_streams(self, account_id: str) -> tuple[int, ...]:
        item = self._read((Keys.account(account_id), Keys.ACCOUNT_SK))
        return () if item is None else tuple(json.loads(item.get("streams", "[]")))

    def load_expiry_view(self, account_id: str, now: int | None = None) -> Account | None:
        """The account item alone: its lots are the summarised live expiring lots (in full
        when it owes an intent's draws, or lots beyond the summary are due at ``now``)."""
        item = self._read((Keys.account(account_id), Keys.ACCOUNT_SK))
        return None if item is None else self._expiry_view(item, now)

    def _expiry_view(self, item: Item, now: int | None) -> Account:
        beyond, due = item.get("unsummarized"), item.get("next_due_at")
        slices_or_holds = "escrow" in item or "holds" in item
        escrow_due = slices_or_holds and due is not None and now is not None and due <= now
        if "intent_id" in item or (beyond is not None and now is not None and beyond <= now) or escrow_due:
            return self.load_account(item["account_id"])
        return account_from_item(item)

    def accounts_due(self, shard: int, now: int, page_size: int = 100) -> Iterator[Account | DueHold]:
        """Accounts and holds of slices in one expiry shard with work due at ``now``, soonest
        first (ties by key)."""
        with self._lock:
            due = sorted((at, key) for key, at in self._due.get(f"EXPIRY#{shard:03d}", {}).items() if at <= now)
            items = [self._partitions[pk][sk] for _, (pk, sk) in due]
            self.reads += max(1, math.ceil(len(items) / page_size))
        for item in items:
            if item["type"] == "hold":
                yield DueHold(item["account_id"], hold_from_item(item))
            else:
                yield self._expiry_view(item, now)

    def find_idempotency_record(self, account_id: str, key: str) -> IdempotencyRecord | None:
        item = self._read(Keys.idempotency(account_id, key))
        if item is None:
            return None
        fields = {name: item[name] for name in ("key", "fingerprint", "status_code", "seq")}
        return IdempotencyRecord(**fields, body=json.loads(item["body"]))

    def find_payment(self, reference: str) -> PaymentRecord | None:
        item = self._read((Keys.payment(reference), Keys.PAYMENT_SK))
        if item is None:
            return None
        fields = (item["account_id"], item["entry_id"], item["seq"], item.get("refunded_minor", 0), item.get("dispute"))
        return PaymentRecord(reference, *fields)

    def find_entry(self, account_id: str, seq: int, stream: int | None = None) -> LedgerEntry | None:
        item = self._read((Keys.stream(account_id, stream), Keys.entry(seq)))
        return None if item is None else entry_from_item(item)

    def load_spilled(self, account_id: str, keys: tuple[str, ...]) -> tuple[Item, ...]:
        pk = Keys.account(account_id)
        items = [self._read((pk, Keys.spill(key))) for key in keys]
        return tuple(event for item in items if item is not None for event in json.loads(item["events"]))

    def find_hold(self, account_id: str, hold_id: str) -> Hold | None:
        item = self._read(Keys.hold(account_id, hold_id))
        return None if item is None else hold_from_item(item)

    def list_holds(self, account_id: str, limit: int) -> list[Hold]:
        partitions = [self.raw_items(Keys.stream(account_id, s)) for s in (None, *self.entry_streams(account_id))]
        found = [hold_from_item(item) for items in partitions for item in items if item["type"] == "hold"]
        return newest_holds(found, limit)

    def reversed_of(self, account_id: str, charge: str) -> int:
        item = self._read((Keys.account(account_id), Keys.reversal(charge)))
        return 0 if item is None else int(item["reversed"])

    def list_entries(
        self, account_id: str, limit: int, before_seq: int | None = None, stream: int | None = None
    ) -> LedgerPage:
        """One stream's entries newest first; ``before_seq`` continues from an earlier page."""
        if before_seq is not None and before_seq <= 1:
            return LedgerPage([], None)

        def wanted(sk: str) -> bool:
            if before_seq is None:
                return sk.startswith(Keys.LEDGER_PREFIX)
            return Keys.entry(1) <= sk <= Keys.entry(before_seq - 1)

        with self._lock:
            self.reads += 1
            partition = self._partitions.get(Keys.stream(account_id, stream), {})
            newest = sorted((sk for sk in partition if wanted(sk)), reverse=True)[:limit]
            items = [partition[sk] for sk in newest]
        entries = [entry_from_item(item) for item in items]
        more = len(entries) == limit and entries[-1].seq > 1
        return LedgerPage(entries, entries[-1].seq if more else None)

    def _read(self, key: Key) -> Item | None:
        with self._lock:
            self.reads += 1
            return self._stored(key)

    def raw_items(self, pk: str) -> list[Item]:
        """The items of one partition as stored, in key order (for golden-item tests)."""
        with self._lock:
            partition = self._partitions.get(pk, {})
            return [dict(partition[sk]) for sk in sorted(partition)]

    # -- writes --------------------------------------------------------------------

    def seed(self, accounts: list[Account], now: int) -> None:
        """Load accounts and their lots as they stand, unguarded, with no ledger history."""
        with self._lock:
            for account in accounts:
                self._put(account_item(account, now, self.expiry))
                for lot in account.lots:
                    self._put(lot_item(Keys.account(account.account_id), lot))

    def apply(self, mutation: Mutation, now: int) -> None:
        """Write a mutation all-or-nothing, guarded by the account version it was computed from."""
        ops = self._operations(mutation, now)
        with self._lock:
            self.writes += 1
        self._validate(ops)
        if not draws_fit(mutation, now):  # as a draw's guard on its lot's item would have
            with self._lock:
                self.conflicts += 1
            raise WriteConflict(VERSION)
        keys = {op.key for op in ops}
        with self._lock:
            self._meter(ops)
            if keys & self._in_flight:  # another transaction holds one of these items
                self.conflicts += 1
                raise WriteConflict(VERSION)
            failed_at = [i for i, op in enumerate(ops) if not passes(op, self._stored(op.key), now)]
            if failed_at:
                self.conflicts += 1
                raise conflict_of(ops, failed_at, [record.key for record in mutation.records])
            if self.transaction_ms <= 0:
                self._commit(ops)
                return
            self._in_flight |= keys
        try:
            time.sleep(self.transaction_ms / 1000)
        finally:  # its guards held: it commits whatever happens to the caller meanwhile
            with self._lock:
                self._in_flight -= keys
                self._commit(ops)

    def _operations(self, mutation: Mutation, now: int) -> list[Operation]:
        """The transaction's items in the Repository's order: puts, then lot updates."""
        account_id = mutation.account.account_id
        pk = Keys.account(account_id)
        version = mutation.account.version
        settled = settlement(mutation)
        account = account_item(mutation.account_after, now, self.expiry)
        slices = [(slice_item(account_id, m.after), m.before.version) for m in mutation.slice_moves]
        # A slice's consume writes its slice first, in the account's place; other slices go
        # after the idempotency records, as the Repository sends them.
        guarded = slices if mutation.spend else [(account, version)]
        ops = [_put_guarded(item, was) for item, was in guarded]
        puts = [(record_item(account_id, r, now), WriteConflict.IDEMPOTENCY_KEY) for r in mutation.records]

        puts += [(entry_item(account_id, entry), VERSION) for entry in mutation.entries]
        entry = mutation.entry
        if mutation.payment_reference is not None and entry is not None:
            paid = {"account_id": mutation.account.account_id, "entry_id": entry.entry_id, "seq": entry.seq}
            payment = stored_item(Keys.payment(mutation.payment_reference), Keys.PAYMENT_SK, "payment", **paid)
            puts.append((payment, WriteConflict.PAYMENT_REFERENCE))
        ops += [Operation((item["pk"], item["sk"]), "absent", meaning, item) for item, meaning in puts]
        lots = [lot_item(pk, lot) for lot in mutation.new_lots if lot.remaining]  # remade: over unsettled credits
        ops += [
            Operation((i["pk"], i["sk"]), "none" if i["lot_id"] in settled.remade else "absent", VERSION, i)
            for i in lots
        ]
        if mutation.hold is not None:  # guarded by the status it leaves (placed: from nothing)
            item, before = hold_item(account_id, mutation.hold.after, self.expiry.shards), mutation.hold.before
            guard = "absent" if before is None else f"status:{before.status}"
            ops.append(Operation((item["pk"], item["sk"]), guard, VERSION, item))
        if mutation.reversal is not None:  # guarded by what the charge had reversed before
            was = mutation.reversal
            total = stored_item(pk, Keys.reversal(was.charge), "reversal", reversed=was.after)
            ops.append(Operation((pk, total["sk"]), "reversed", VERSION, total, was.before))
        if not mutation.spend:
            ops += [_put_guarded(item, was) for item, was in slices]
        if mutation.intent_after is not None:  # rewritten under the account's version guard
            ops.append(Operation((pk, Keys.INTENT_SK), "none", VERSION, intent_item(pk, mutation.intent_after)))
        ops += [
            Operation((pk, Keys.lot(w.lot_id)), w.guard, VERSION, None, w.amount, w.deletes) for w in settled.writes
        ]
        ops += [Operation((pk, Keys.lot(lot_id)), "exists", VERSION) for lot_id in mutation.warned]
        ops += [Operation((pk, Keys.lot(r.lot_id)), "return", VERSION, None, r.amount) for r in mutation.returns]
        ops += [Operation((pk, Keys.lot(i)), "freeze", VERSION) for i in mutation.frozen]
        ops += [Operation((pk, Keys.lot(i)), "unfreeze", VERSION) for i in mutation.unfrozen]
        if mutation.account.intent is not None and mutation.intent_after is None:
            ops.append(Operation((pk, Keys.INTENT_SK), "none", VERSION, deletes=True))
        ops += spill_operations(mutation)
        if (refund := mutation.refund) is not None:  # guarded by the payment's refunded total before
            key, refunded_before = (Keys.payment(refund.reference), Keys.PAYMENT_SK), refund.before_minor
            ops.append(
                Operation(
                    key, "refunded", VERSION, None, refunded_before, refunded=refund.after_minor, dispute=refund.dispute
                )
            )
        return ops

    def _validate(self, ops: list[Operation]) -> None:
        """DynamoDB's ValidationException, before anything is read or written."""
        if len(ops) > self.max_transaction_items:
            raise _refused("ValidationException", f"transactItems: length must be <= {self.max_transaction_items}")
        if len({op.key for op in ops}) < len(ops):
            raise _refused("ValidationException", "Transaction request cannot include multiple operations on one item")
        sizes = [item_size(op.item) for op in ops if op.item is not None]
        if max(sizes, default=0) > MAX_ITEM_BYTES:
            raise _refused("ValidationException", "Item size has exceeded the maximum allowed size")
        if sum(sizes) > MAX_TRANSACTION_BYTES:
            raise _refused("ValidationException", "Transaction size has exceeded the 4 MB limit")

    def _meter(self, ops: list[Operation]) -> None:
        """Charge each partition 2 write units per started KB of each item (lock held)."""
        limit = self.partition_write_units_per_second
        if limit is None:
            return
        second = int(self._clock())
        cost: dict[str, int] = {}
        for op in ops:
            size = item_size(op.item if op.item is not None else self._stored(op.key) or {})
            cost[op.key[0]] = cost.get(op.key[0], 0) + 2 * max(1, math.ceil(size / 1024))
        used = {pk: units if at == second else 0 for pk, (at, units) in self._units.items() if pk in cost}
        if any(used.get(pk, 0) + units > limit for pk, units in cost.items()):
            self.throttled += 1
            raise _refused("ThrottlingException", "Throughput exceeds the current capacity for one partition key")
        for pk, units in cost.items():
            self._units[pk] = (second, used.get(pk, 0) + units)

    # -- items (the lock held) -------------------------------------------------------

    def _stored(self, key: Key) -> Item | None:
        return self._partitions.get(key[0], {}).get(key[1])

    def _commit(self, ops: list[Operation]) -> None:
        for op in ops:
            after = written(op, self._stored(op.key))
            if after is None:
                self._partitions.get(op.key[0], {}).pop(op.key[1], None)
            else:
                self._put(after)

    def _put(self, item: Item) -> None:
        pk, sk = item["pk"], item["sk"]
        partition = self._partitions.setdefault(pk, {})
        old = partition.get(sk)
        partition[sk] = item
        if old is not None and "expiry_shard" in old:
            self._due.get(old["expiry_shard"], {}).pop((pk, sk), None)
        if "expiry_shard" in item and "next_due_at" in item:
            self._due.setdefault(item["expiry_shard"], {})[(pk, sk)] = item["next_due_at"]
