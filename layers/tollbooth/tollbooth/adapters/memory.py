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
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tollbooth.adapters.keys import Keys
from tollbooth.adapters.lot_attributes import (
    lot_from_attributes,
    lot_summary,
    periods_stored,
)
from tollbooth.adapters.memory_items import (
    ACCOUNT_PLAIN,
    Item,
    account_from_item,
    entry_from_item,
    entry_item,
    intent_item,
    item_size,
    lot_item,
    record_item,
    stored_item,
)
from tollbooth.app.ports import LedgerPage, PaymentRecord, WriteConflict
from tollbooth.domain.errors import ChangeTooLarge, StorageUnavailable, TollboothError
from tollbooth.domain.expiry import expiry_summary
from tollbooth.domain.ledger import Account, ExpiryIndexing, IdempotencyRecord, LedgerEntry, Mutation

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
    error.__cause__ = DynamoDBError(code, message)
    return error


# -- one transaction -----------------------------------------------------------------


@dataclass(frozen=True)
class _Operation:
    """One item of a transaction: its guard, and the item a put writes (None: an update)."""

    key: Key
    guard: str  # absent | version | draw | transfer | expire | exists | none
    meaning: str  # what a failed guard means, as the Repository reads its cancellation reasons
    item: Item | None = None
    amount: int = 0  # the version to match, or the credits an update moves
    deletes: bool = False  # the lot's last credit (guarded by exactly what is left), or the intent
    refunded: int = 0  # a payment's refunded total after a refund (guarded by ``amount``, before)


def _passes(op: _Operation, current: Item | None, now: int) -> bool:
    if op.guard == "none":
        return True
    if op.guard == "absent":
        return current is None
    if current is None:
        return False
    remaining, expires_at = current.get("remaining"), current.get("expires_at")
    if op.guard == "version":
        return bool(current.get("version") == op.amount)
    if op.guard == "refunded":
        return bool(current.get("refunded_minor", 0) == op.amount)
    enough = remaining is not None and (remaining == op.amount if op.deletes else remaining >= op.amount)
    if op.guard == "draw":
        return enough and (expires_at is None or expires_at > now)
    if op.guard == "transfer":
        return enough
    if op.guard == "expire":
        return enough and expires_at is not None and expires_at <= now
    return True  # exists


def _written(op: _Operation, current: Item | None) -> Item | None:
    """The item once the operation commits (None: it is deleted)."""
    if op.deletes:
        return None
    if op.item is not None:
        return op.item
    assert current is not None, "every update's guard needs the item"
    if op.guard in ("draw", "transfer"):
        return {**current, "remaining": current["remaining"] - op.amount}
    if op.guard == "refunded":
        return {**current, "refunded_minor": op.refunded}
    return {**current, "warned": True}


def _conflict(ops: list[_Operation], failed_at: list[int], keys: list[str]) -> WriteConflict:
    """As the Repository's ``_conflict`` reads the cancellation reasons (the account comes first,
    then one idempotency record per key, in order)."""
    failed = {ops[i].meaning for i in failed_at}
    if WriteConflict.IDEMPOTENCY_KEY in failed:
        return WriteConflict(WriteConflict.IDEMPOTENCY_KEY, {keys[i - 1] for i in failed_at if 1 <= i <= len(keys)})
    if WriteConflict.PAYMENT_REFERENCE in failed:
        return WriteConflict(WriteConflict.PAYMENT_REFERENCE)
    return WriteConflict(VERSION)


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
        self._due: dict[str, dict[str, int]] = {}  # the sparse expiry index: shard -> pk -> next_due_at
        self._in_flight: set[Key] = set()
        self._units: dict[str, tuple[int, int]] = {}  # pk -> (second, write units used in it)
        self.writes = self.reads = self.conflicts = self.throttled = 0

    # -- reads ---------------------------------------------------------------------

    def load_account(self, account_id: str) -> Account:
        """The account, its live lots and any intent; a new account reads as empty."""
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
        return account_from_item(kinds["account"][0], lots, next(iter(kinds.get("intent", [])), None))

    def load_expiry_view(self, account_id: str, now: int | None = None) -> Account | None:
        """The account item alone: its lots are the summarised live expiring lots (in full
        when it owes an intent's draws, or lots beyond the summary are due at ``now``)."""
        item = self._read((Keys.account(account_id), Keys.ACCOUNT_SK))
        return None if item is None else self._expiry_view(item, now)

    def _expiry_view(self, item: Item, now: int | None) -> Account:
        beyond = item.get("unsummarized")
        if "intent_id" in item or (beyond is not None and now is not None and beyond <= now):
            return self.load_account(item["account_id"])
        return account_from_item(item)

    def accounts_due(self, shard: int, now: int, page_size: int = 100) -> Iterator[Account]:
        """Accounts of one expiry shard with work due at ``now``, soonest first (ties by key)."""
        with self._lock:
            due = sorted((at, pk) for pk, at in self._due.get(f"EXPIRY#{shard:03d}", {}).items() if at <= now)
            items = [self._partitions[pk][Keys.ACCOUNT_SK] for _, pk in due]
            self.reads += max(1, math.ceil(len(items) / page_size))
        for item in items:
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
        fields = (item["account_id"], item["entry_id"], item["seq"], item.get("refunded_minor", 0))
        return PaymentRecord(reference, *fields)

    def find_entry(self, account_id: str, seq: int) -> LedgerEntry | None:
        item = self._read((Keys.account(account_id), Keys.entry(seq)))
        return None if item is None else entry_from_item(item)

    def list_entries(self, account_id: str, limit: int, before_seq: int | None = None) -> LedgerPage:
        """Ledger entries newest first; ``before_seq`` continues from an earlier page."""
        if before_seq is not None and before_seq <= 1:
            return LedgerPage([], None)

        def wanted(sk: str) -> bool:
            if before_seq is None:
                return sk.startswith(Keys.LEDGER_PREFIX)
            return Keys.entry(1) <= sk <= Keys.entry(before_seq - 1)

        with self._lock:
            self.reads += 1
            partition = self._partitions.get(Keys.account(account_id), {})
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
                self._put(self._account_item(account, now))
                for lot in account.lots:
                    self._put(lot_item(Keys.account(account.account_id), lot))

    def apply(self, mutation: Mutation, now: int) -> None:
        """Write a mutation all-or-nothing, guarded by the account version it was computed from."""
        ops = self._operations(mutation, now)
        with self._lock:
            self.writes += 1
        self._validate(ops)
        keys = {op.key for op in ops}
        with self._lock:
            self._meter(ops)
            if keys & self._in_flight:  # another transaction holds one of these items
                self.conflicts += 1
                raise WriteConflict(VERSION)
            failed_at = [i for i, op in enumerate(ops) if not _passes(op, self._stored(op.key), now)]
            if failed_at:
                self.conflicts += 1
                raise _conflict(ops, failed_at, [record.key for record in mutation.records])
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

    def _operations(self, mutation: Mutation, now: int) -> list[_Operation]:
        """The transaction's items in the Repository's order: puts, then lot updates."""
        pk = Keys.account(mutation.account.account_id)
        version = mutation.account.version
        account = self._account_item(mutation.account_after, now)
        ops = [_Operation((pk, Keys.ACCOUNT_SK), "absent" if version == 0 else "version", VERSION, account, version)]
        account_id = mutation.account.account_id
        puts = [(record_item(account_id, r, now), WriteConflict.IDEMPOTENCY_KEY) for r in mutation.records]
        puts += [(entry_item(pk, entry), VERSION) for entry in mutation.entries]
        puts += [(lot_item(pk, lot), VERSION) for lot in mutation.new_lots if lot.remaining]
        entry = mutation.entry
        if mutation.payment_reference is not None and entry is not None:
            paid = {"account_id": mutation.account.account_id, "entry_id": entry.entry_id, "seq": entry.seq}
            payment = stored_item(Keys.payment(mutation.payment_reference), Keys.PAYMENT_SK, "payment", **paid)
            puts.append((payment, WriteConflict.PAYMENT_REFERENCE))
        ops += [_Operation((item["pk"], item["sk"]), "absent", meaning, item) for item, meaning in puts]
        if mutation.intent_after is not None:  # rewritten under the account's version guard
            ops.append(_Operation((pk, Keys.INTENT_SK), "none", VERSION, intent_item(pk, mutation.intent_after)))
        updates = [(d, "draw") for d in mutation.draws] + [(t, "transfer") for t in mutation.transfers]
        updates += [(x, "expire") for x in mutation.expirations]
        ops += [
            _Operation(
                (pk, Keys.lot(d.lot_id)), g, VERSION, None, d.amount, d.lot_id in mutation.emptied or g == "expire"
            )
            for d, g in updates
        ]
        ops += [_Operation((pk, Keys.lot(lot_id)), "exists", VERSION) for lot_id in mutation.warned]
        if mutation.account.intent is not None and mutation.intent_after is None:
            ops.append(_Operation((pk, Keys.INTENT_SK), "none", VERSION, deletes=True))
        if mutation.refund is not None:
            refund = mutation.refund
            payment_key = (Keys.payment(refund.reference), Keys.PAYMENT_SK)
            ops.append(
                _Operation(payment_key, "refunded", VERSION, None, refund.before_minor, refunded=refund.after_minor)
            )
        return ops

    def _account_item(self, account: Account, now: int) -> Item:
        """The account item for a state, with the sweep's summary and index keys."""
        summary = expiry_summary(account, self.expiry)
        due = summary.next_due_at
        fields = {name: getattr(account, name) for name in (*ACCOUNT_PLAIN, "seq")}
        fields |= {"arrears": account.arrears or None, "clawed_back": account.clawed_back or None, "updated_at": now}
        summaries = [lot_summary(lot) for lot in summary.lots]
        fields["expiring_lots"] = json.dumps(summaries) if summaries else None
        fields["unsummarized"] = summary.unsummarized
        fields["pending_events"] = json.dumps(list(account.pending_events)) if account.pending_events else None
        periods = periods_stored(account.periods)
        fields["periods"] = None if periods is None else json.dumps(periods)
        fields["intent_id"] = None if account.intent is None else account.intent.entry_id
        fields["expiry_shard"] = None if due is None else Keys.expiry_shard(account.account_id, self.expiry.shards)
        return stored_item(Keys.account(account.account_id), Keys.ACCOUNT_SK, "account", **fields, next_due_at=due)

    def _validate(self, ops: list[_Operation]) -> None:
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

    def _meter(self, ops: list[_Operation]) -> None:
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

    def _commit(self, ops: list[_Operation]) -> None:
        for op in ops:
            written = _written(op, self._stored(op.key))
            if written is None:
                self._partitions.get(op.key[0], {}).pop(op.key[1], None)
            else:
                self._put(written)

    def _put(self, item: Item) -> None:
        pk, sk = item["pk"], item["sk"]
        partition = self._partitions.setdefault(pk, {})
        old = partition.get(sk)
        partition[sk] = item
        if old is not None and "expiry_shard" in old:
            self._due.get(old["expiry_shard"], {}).pop(pk, None)
        if "expiry_shard" in item and "next_due_at" in item:
            self._due.setdefault(item["expiry_shard"], {})[pk] = item["next_due_at"]
