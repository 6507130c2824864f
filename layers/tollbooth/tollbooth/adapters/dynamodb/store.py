"""The DynamoDB ledger store: every DynamoDB read and write in Tollbooth goes through here."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from tollbooth.adapters.dynamodb.changes import lot_changes, payment_changes, spill_changes, write_one
from tollbooth.adapters.dynamodb.errors import conflict_of, storage_errors
from tollbooth.adapters.dynamodb.items import (
    AccountItem,
    HoldItem,
    IdempotencyItem,
    IntentItem,
    LedgerItem,
    LotItem,
    PaymentItem,
    ReversalItem,
    SliceItem,
    SpillItem,
    TableItem,
    account_from_item,
    account_item,
    entry_from_item,
    hold_item,
    intent_from_item,
    intent_item,
    ledger_item,
    lot_from_item,
    lot_item,
    slice_from_item,
    slice_item,
)
from tollbooth.adapters.keys import Keys
from tollbooth.adapters.lot_attributes import hold_from_stored
from tollbooth.app.ports import LedgerPage, PaymentRecord, WriteConflict
from tollbooth.domain.errors import StorageUnavailable
from tollbooth.domain.expiry import ExpiryIndexing
from tollbooth.domain.hold_state import DueHold, Hold, newest_holds
from tollbooth.domain.ledger import Account, IdempotencyRecord, LedgerEntry, Lot, Mutation, Slice
from tollbooth.domain.unsettled import Settlement, draws_fit, settlement

# Each DynamoDB call gives up within (connect + read) x attempts = 8 s, inside the
# functions' 10 s timeout (PynamoDB's defaults, 15 s + 30 s x 4, would outlast it): a stuck
# call becomes a 503 the client retries with its Idempotency-Key, never a timed-out function.
CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 3.0
MAX_RETRY_ATTEMPTS = 1  # botocore retries throttling and 5xx once more before we answer 503
# Reads of an account with slices while writers keep changing it (refills, recalls), with
# jittered waits between, before it is returned as not consistent (``Account.consistent``).
SNAPSHOT_TRIES = 4
SNAPSHOT_BACKOFF_SECONDS = 0.01


class Repository:
    """Access patterns over the Tollbooth table, named for what the service needs."""

    def __init__(
        self,
        table_name: str,
        region: str,
        endpoint_url: str | None = None,
        expiry: ExpiryIndexing | None = None,
        max_transaction_items: int = 100,
    ) -> None:
        # PynamoDB keeps table settings on the model class: one table per process, as in Lambda.
        TableItem.Meta.table_name = table_name
        TableItem.Meta.region = region
        TableItem.Meta.host = endpoint_url
        TableItem.Meta.connect_timeout_seconds = CONNECT_TIMEOUT_SECONDS
        TableItem.Meta.read_timeout_seconds = READ_TIMEOUT_SECONDS
        TableItem.Meta.max_retry_attempts = MAX_RETRY_ATTEMPTS
        self.expiry = expiry or ExpiryIndexing()
        # DynamoDB takes 100 items per transaction; older DynamoDB Local builds take 10.
        self.max_transaction_items = max_transaction_items
        TableItem._connection = None  # every item's, and the transactions' (``TableItem._get_connection``)

    @property
    def _connection(self) -> Connection:
        return TableItem._get_connection().connection

    def connect(self) -> None:
        """Make the client every call goes through, now and on this thread: threads started
        after share it, and the service model it parsed."""
        self._connection.client  # noqa: B018 (made on first use)

    # -- reads ---------------------------------------------------------------

    def load_account(self, account_id: str) -> Account:
        """The account, its live lots and any intent in one consistent Query (a lot leaves
        the store with its last credit, so history is never read); a new account reads as
        empty. An account with slices has them read too, and its item read again: a slice
        gains credits only with a new version of the account, so the two reads hold what the
        whole account held at one moment (what a refusal may rest on)."""
        for attempt in range(SNAPSHOT_TRIES):
            account = self._load(account_id)
            if not account.streams or self._version(account_id) == account.version:
                return account
            time.sleep(random.uniform(0, SNAPSHOT_BACKOFF_SECONDS * 2**attempt))
        return replace(account, consistent=False)

    def _version(self, account_id: str) -> int | None:
        with storage_errors():
            try:
                item = AccountItem.get(
                    Keys.account(account_id), Keys.ACCOUNT_SK, consistent_read=True, attributes_to_get=["version"]
                )
            except AccountItem.DoesNotExist:
                return None
        return int(item.version)

    def load_own(self, account_id: str) -> Account:
        return self._load(account_id, slices=False)

    def _load(self, account_id: str, *, slices: bool = True) -> Account:
        pk = Keys.account(account_id)
        account: AccountItem | None = None
        lots: list[Lot] = []
        intent = None
        with storage_errors():
            for item in TableItem.query(
                pk, TableItem.sk.between(Keys.ACCOUNT_SK, Keys.ACCOUNT_RANGE_END), consistent_read=True
            ):
                if isinstance(item, AccountItem):
                    account = item
                elif isinstance(item, LotItem):
                    lots.append(lot_from_item(item))
                elif isinstance(item, IntentItem):
                    intent = intent_from_item(item)
        if account is None:
            return Account(account_id=account_id)
        streams = (account.streams or []) if slices else []
        return account_from_item(account, tuple(lots), intent, self._slices(account_id, streams))

    def load_spilled(self, account_id: str, keys: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
        """The spills' events, in one consistent BatchGetItem per 100 keys, in ``keys``' order."""
        pk = Keys.account(account_id)
        with storage_errors():
            items = SpillItem.batch_get([(pk, Keys.spill(key)) for key in keys], consistent_read=True)
            found = {item.sk: item.events for item in items}
        return tuple(event for key in keys for event in found.get(Keys.spill(key), []))

    def _slices(self, account_id: str, indexes: list[int]) -> tuple[Slice, ...]:
        """The account's escrow slices, in one consistent BatchGetItem (at most 100 keys)."""
        if not indexes:
            return ()
        keys = [(Keys.slice(account_id, int(index)), Keys.SLICE_SK) for index in indexes]
        with storage_errors():
            found = [slice_from_item(item) for item in SliceItem.batch_get(keys, consistent_read=True)]
        return tuple(sorted(found, key=lambda held: held.index))

    def load_slice(self, account_id: str, index: int) -> Account:
        """One escrow slice alone (a new slice reads as empty): what a slice's consume needs."""
        with storage_errors():
            try:
                item = SliceItem.get(Keys.slice(account_id, index), Keys.SLICE_SK, consistent_read=True)
            except SliceItem.DoesNotExist:
                return Account(account_id, slices=(Slice(index),))
        return Account(account_id, slices=(slice_from_item(item),))

    def entry_streams(self, account_id: str) -> tuple[int, ...]:
        with storage_errors():
            try:
                item = AccountItem.get(Keys.account(account_id), Keys.ACCOUNT_SK, attributes_to_get=["streams"])
            except AccountItem.DoesNotExist:
                return ()
        return tuple(int(index) for index in item.streams or ())

    def load_expiry_view(self, account_id: str, now: int | None = None) -> Account | None:
        """The account item alone (one consistent GetItem): its lots are the summarised live
        expiring ones. The account is loaded in full when it owes an intent's draws, or when
        lots beyond its summary are due at ``now``."""
        with storage_errors():
            try:
                item = AccountItem.get(Keys.account(account_id), Keys.ACCOUNT_SK, consistent_read=True)
            except AccountItem.DoesNotExist:
                return None
        return self._expiry_view(item, now)

    def _expiry_view(self, item: AccountItem, now: int | None) -> Account:
        beyond, due = item.unsummarized, item.next_due_at
        if (
            item.intent_id
            or (beyond is not None and now is not None and int(beyond) <= now)
            or ((item.escrow or item.holds) and due is not None and now is not None and int(due) <= now)
        ):  # an intent's draws, lots beyond the summary, credits in escrow slices or a hold are due
            return self.load_account(item.account_id)
        return account_from_item(item)

    def accounts_due(self, shard: int, now: int, page_size: int = 100) -> Iterator[Account | DueHold]:
        """Accounts and holds of slices in one shard of the expiry index with work due at
        ``now``, soonest first.

        An account comes with its summarised live expiring lots; it reads one index item per
        account (and the account in full when it owes an intent's draws or lots beyond the
        summary are due). A hold comes as its item holds it."""
        shard_key = Keys.expiry_shard_key(shard)
        with storage_errors():
            for item in TableItem.expiry_index.query(shard_key, TableItem.next_due_at <= now, page_size=page_size):
                if isinstance(item, HoldItem):
                    yield DueHold(str(item.account_id), hold_from_stored(item.attribute_values))
                elif isinstance(item, AccountItem):
                    yield self._expiry_view(item, now)

    def find_idempotency_record(self, account_id: str, key: str) -> IdempotencyRecord | None:
        with storage_errors():
            try:
                item = IdempotencyItem.get(*Keys.idempotency(account_id, key), consistent_read=True)
            except IdempotencyItem.DoesNotExist:
                return None
        return IdempotencyRecord(
            key=item.key,
            fingerprint=item.fingerprint,
            status_code=int(item.status_code),
            body=json.loads(item.body),
            seq=int(item.seq),
        )

    def find_payment(self, reference: str) -> PaymentRecord | None:
        with storage_errors():
            try:
                item = PaymentItem.get(Keys.payment(reference), Keys.PAYMENT_SK, consistent_read=True)
            except PaymentItem.DoesNotExist:
                return None
        refunded = int(item.refunded_minor or 0)
        return PaymentRecord(reference, item.account_id, item.entry_id, int(item.seq), refunded, item.dispute)

    def find_entry(self, account_id: str, seq: int, stream: int | None = None) -> LedgerEntry | None:
        with storage_errors():
            try:
                item = LedgerItem.get(Keys.stream(account_id, stream), Keys.entry(seq), consistent_read=True)
            except LedgerItem.DoesNotExist:
                return None
        return entry_from_item(item)

    def find_hold(self, account_id: str, hold_id: str) -> Hold | None:
        with storage_errors():
            try:
                item = HoldItem.get(*Keys.hold(account_id, hold_id), consistent_read=True)
            except HoldItem.DoesNotExist:
                return None
        return hold_from_stored(item.attribute_values)

    def list_holds(self, account_id: str, limit: int) -> list[Hold]:
        """The newest ``limit`` holds: the account's own, and those of each slice that has
        written entries (a Query per partition)."""
        condition = HoldItem.sk.startswith(Keys.HOLD_PREFIX)
        found: list[Hold] = []
        with storage_errors():
            for stream in (None, *self.entry_streams(account_id)):
                pk = Keys.stream(account_id, stream)
                items = HoldItem.query(pk, condition, scan_index_forward=False, limit=limit)
                found += [hold_from_stored(item.attribute_values) for item in items if isinstance(item, HoldItem)]
        return newest_holds(found, limit)

    def reversed_of(self, account_id: str, charge: str) -> int:
        with storage_errors():
            try:
                item = ReversalItem.get(Keys.account(account_id), Keys.reversal(charge), consistent_read=True)
            except ReversalItem.DoesNotExist:
                return 0
        return int(item.reversed)

    def list_entries(
        self, account_id: str, limit: int, before_seq: int | None = None, stream: int | None = None
    ) -> LedgerPage:
        """One stream's entries newest first; ``before_seq`` continues from an earlier page."""
        if before_seq is not None and before_seq <= 1:
            return LedgerPage([], None)
        condition = (
            TableItem.sk.startswith(Keys.LEDGER_PREFIX)
            if before_seq is None
            else TableItem.sk.between(Keys.entry(1), Keys.entry(before_seq - 1))
        )
        with storage_errors():
            results = LedgerItem.query(
                Keys.stream(account_id, stream), condition, scan_index_forward=False, limit=limit, page_size=limit
            )
            entries = [entry_from_item(item) for item in results if isinstance(item, LedgerItem)]
        more = len(entries) == limit and entries[-1].seq > 1
        return LedgerPage(entries, entries[-1].seq if more else None)

    # -- writes --------------------------------------------------------------

    def seed(self, accounts: list[Account], now: int) -> None:
        """Bulk-load accounts and their lots as they stand, with no ledger history (benchmarks
        and fixtures only: nothing here is guarded, and the ledger will not add up)."""
        with storage_errors(), AccountItem.batch_write() as batch:
            for account in accounts:
                batch.save(account_item(self.expiry, account, now))
                for lot in account.lots:
                    batch.save(lot_item(Keys.account(account.account_id), lot))

    def apply(self, mutation: Mutation, now: int) -> None:
        """Write a mutation all-or-nothing, guarded by the account version it was computed from."""
        if not draws_fit(mutation, now):  # as a draw's guard on its lot's item would have
            raise WriteConflict(VERSION)
        settled = settlement(mutation)
        puts = self._puts(mutation, settled, now)
        updates, deletes = lot_changes(mutation, settled, now)
        updates += payment_changes(mutation)
        spilled, published = spill_changes(mutation)  # after the records, whose keys a conflict names
        puts, deletes = puts + spilled, deletes + published
        if len(puts) + len(updates) + len(deletes) == 1:
            return write_one(puts, updates, deletes)
        try:
            with TransactWrite(connection=self._connection) as transaction:
                for item, condition, _ in puts:
                    transaction.save(item, condition=condition)
                for lot, actions, condition in updates:
                    transaction.update(lot, actions=actions, condition=condition)
                for gone, condition in deletes:
                    transaction.delete(gone, condition=condition)
        except TransactWriteError as error:
            # PynamoDB sends condition checks, then deletes, then puts, then updates: the
            # cancellation reasons come in that order, whatever order they were added in.
            meanings = [VERSION] * len(deletes) + [meaning for _, _, meaning in puts] + [VERSION] * len(updates)
            keys = [None] * (len(deletes) + 1) + [record.key for record in mutation.records]
            raise conflict_of(error, meanings, keys) from error
        except PynamoDBException as error:
            raise StorageUnavailable("the ledger store failed; retry the request") from error

    def _puts(self, mutation: Mutation, settled: Settlement, now: int) -> list[tuple[Model, Any, str]]:
        """Each item the mutation puts, with the guard it must pass and what a failure of that
        guard means: the account (or, for a slice's consume, the slice) first, then the
        idempotency records (so that a conflict names the keys already used), the entries,
        the new lots, a slice, the payment."""
        account_id = mutation.account.account_id
        pk = Keys.account(account_id)
        version = mutation.account.version
        guard = AccountItem.pk.does_not_exist() if version == 0 else AccountItem.version == version
        puts: list[tuple[Model, Any, str]] = []
        if not mutation.spend:
            puts.append((account_item(self.expiry, mutation.account_after, now), guard, VERSION))
        slices = [
            (slice_item(account_id, m.after), _slice_guard(m.before.version), VERSION) for m in mutation.slice_moves
        ]
        if mutation.spend:  # a slice's consume: the slice comes first, in the account's place
            puts += slices
        for record in mutation.records:
            item = IdempotencyItem(
                *Keys.idempotency(mutation.account.account_id, record.key),
                key=record.key,
                fingerprint=record.fingerprint,
                status_code=record.status_code,
                body=json.dumps(record.body, separators=(",", ":")),
                seq=record.seq,
                created_at=now,
            )
            puts.append((item, IdempotencyItem.pk.does_not_exist(), WriteConflict.IDEMPOTENCY_KEY))
        puts += [(ledger_item(account_id, e), LedgerItem.pk.does_not_exist(), VERSION) for e in mutation.entries]
        remade = settled.remade  # over an item holding only unsettled credits
        lots = [lot for lot in mutation.new_lots if lot.remaining]
        puts += [
            (lot_item(pk, lot), None if lot.lot_id in remade else LotItem.pk.does_not_exist(), VERSION) for lot in lots
        ]
        if not mutation.spend:
            puts += slices
        if mutation.intent_after is not None:  # rewritten under the account's version guard
            puts.append((intent_item(pk, mutation.intent_after), None, VERSION))
        entry = mutation.entry
        if mutation.payment_reference is not None and entry is not None:
            payment = PaymentItem(
                Keys.payment(mutation.payment_reference),
                Keys.PAYMENT_SK,
                account_id=mutation.account.account_id,
                entry_id=entry.entry_id,
                seq=entry.seq,
            )
            puts.append((payment, PaymentItem.pk.does_not_exist(), WriteConflict.PAYMENT_REFERENCE))
        if mutation.hold is not None:  # guarded by the status it leaves (placed: from nothing)
            before = mutation.hold.before
            was = HoldItem.pk.does_not_exist() if before is None else HoldItem.status == before.status
            puts.append((hold_item(account_id, mutation.hold.after, self.expiry.shards), was, VERSION))
        reversal = mutation.reversal
        if reversal is not None:  # guarded by what the charge had reversed before
            was = ReversalItem.pk.does_not_exist() if reversal.before == 0 else ReversalItem.reversed == reversal.before
            total = ReversalItem(pk, Keys.reversal(reversal.charge), reversed=reversal.after)
            puts.append((total, was, VERSION))
        return puts


VERSION = WriteConflict.VERSION


def _slice_guard(version: int) -> Any:
    """A slice is written from the version it was read at (a new one: from nothing)."""
    return SliceItem.pk.does_not_exist() if version == 0 else SliceItem.version == version
