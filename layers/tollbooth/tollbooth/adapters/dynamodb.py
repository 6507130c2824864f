"""The data-access module: every DynamoDB read and write in Tollbooth goes through here.

Single-table design, one partition per account:

    pk                  sk                       item
    ACCOUNT#<id>        ACCOUNT                  version, balance and lifetime totals
    ACCOUNT#<id>        ACCOUNT#LOT#<lot_id>     one credit lot
    ACCOUNT#<id>        LEDGER#<seq:012d>        ledger entry number <seq> (append-only)
    ACCOUNT#<id>        IDEMPOTENCY#<key>        the first response to <key>, kept for good
    PAYMENT#<ref>       PAYMENT                  which account and entry a payment granted

Reading an account is one consistent Query (``sk`` begins with ``ACCOUNT``: the
account item and its lots). Writing is one TransactWriteItems whose first item
puts the account with a condition on its version, so every mutation of an account
is serialized and entry numbers have no gaps.

The account item also carries what the expiry sweep needs, so that finding and
writing off due lots reads one item per account: a summary of its live expiring lots,
its outbox of unpublished events, and, while it has any of those, the keys of the
sparse ``ExpiryIndex`` (``expiry_shard``, ``next_due_at``). The sweep queries each
shard for ``next_due_at <= now``: work proportional to what is due, never a scan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from tollbooth.app.ports import LedgerPage, WriteConflict
from tollbooth.domain.errors import StorageUnavailable
from tollbooth.domain.ledger import Account, ExpiryIndexing, IdempotencyRecord, LedgerEntry, Lot, Mutation, next_due_at

ENTRY_SEQ_DIGITS = 12


class Keys:
    """The one place that spells keys."""

    @staticmethod
    def account(account_id: str) -> str:
        return f"ACCOUNT#{account_id}"

    ACCOUNT_SK = "ACCOUNT"
    LOT_PREFIX = "ACCOUNT#LOT#"
    LEDGER_PREFIX = "LEDGER#"

    @staticmethod
    def lot(lot_id: str) -> str:
        return f"{Keys.LOT_PREFIX}{lot_id}"

    @staticmethod
    def entry(seq: int) -> str:
        return f"{Keys.LEDGER_PREFIX}{seq:0{ENTRY_SEQ_DIGITS}d}"

    @staticmethod
    def idempotency(key: str) -> str:
        return f"IDEMPOTENCY#{key}"

    @staticmethod
    def payment(reference: str) -> str:
        return f"PAYMENT#{reference}"

    PAYMENT_SK = "PAYMENT"

    @staticmethod
    def expiry_shard(account_id: str, shards: int) -> str:
        digest = hashlib.sha256(account_id.encode()).digest()
        return f"EXPIRY#{int.from_bytes(digest[:4], 'big') % shards:03d}"


# ---------------------------------------------------------------------------
# Storage models (PynamoDB). Separate from the domain dataclasses on purpose.


class TableItem(Model):
    class Meta:
        table_name: str | None = None
        region = "us-east-1"
        host: str | None = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    item_type = DiscriminatorAttribute(attr_name="type")


class ExpiryIndex(GlobalSecondaryIndex["AccountItem"]):
    """Sparse: only accounts the sweep will have work on carry its keys."""

    class Meta:
        index_name = "ExpiryIndex"
        projection = AllProjection()

    expiry_shard = UnicodeAttribute(hash_key=True)
    next_due_at = NumberAttribute(range_key=True)


class AccountItem(TableItem, discriminator="account"):
    account_id = UnicodeAttribute()
    version = NumberAttribute()
    seq = NumberAttribute(null=True)
    balance = NumberAttribute()
    granted = NumberAttribute()
    consumed = NumberAttribute()
    expired = NumberAttribute()
    arrears = NumberAttribute(null=True)
    updated_at = NumberAttribute()
    expiring_lots = JSONAttribute(null=True)  # summary of live lots with an expiry, for the sweep
    pending_events = JSONAttribute(null=True)  # the outbox
    expiry_shard = UnicodeAttribute(null=True)
    next_due_at = NumberAttribute(null=True)
    expiry_index = ExpiryIndex()


class LotItem(TableItem, discriminator="lot"):
    lot_id = UnicodeAttribute()
    source = UnicodeAttribute()
    granted = NumberAttribute()
    remaining = NumberAttribute()
    created_at = NumberAttribute()
    expires_at = NumberAttribute(null=True)
    priority = NumberAttribute()
    price_minor = NumberAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    package_id = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    licences = UnicodeSetAttribute(null=True)  # absent: any licence
    features = UnicodeSetAttribute(null=True)  # absent: any feature
    priority_processing = BooleanAttribute(null=True)
    unlocks = UnicodeSetAttribute(null=True)
    campaign_id = UnicodeAttribute(null=True)
    plan_id = UnicodeAttribute(null=True)
    warned = BooleanAttribute(null=True)
    expiry_grace = NumberAttribute(null=True)


class LedgerItem(TableItem, discriminator="entry"):
    entry_id = UnicodeAttribute()
    seq = NumberAttribute()
    kind = UnicodeAttribute()
    amount = NumberAttribute()
    balance_after = NumberAttribute()
    created_at = NumberAttribute()
    idempotency_key = UnicodeAttribute(null=True)
    details = JSONAttribute(null=True)


class IdempotencyItem(TableItem, discriminator="idempotency"):
    key = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    status_code = NumberAttribute()
    body = UnicodeAttribute()  # the exact JSON first returned
    seq = NumberAttribute()
    created_at = NumberAttribute()


class PaymentItem(TableItem, discriminator="payment"):
    account_id = UnicodeAttribute()
    entry_id = UnicodeAttribute()
    seq = NumberAttribute()


# ---------------------------------------------------------------------------
# Outcomes the service reacts to. They are not errors of the caller.


def _entry_from_item(item: LedgerItem) -> LedgerEntry:
    return LedgerEntry(
        entry_id=item.entry_id,
        seq=int(item.version if item.seq is None else item.seq),  # items written before seq existed
        kind=item.kind,  # type: ignore[arg-type]
        amount=int(item.amount),
        balance_after=int(item.balance_after),
        created_at=int(item.created_at),
        idempotency_key=item.idempotency_key,
        details=item.details or {},
    )


def _lot_from_item(item: LotItem) -> Lot:
    return Lot(
        lot_id=item.lot_id,
        source=item.source,  # type: ignore[arg-type]
        granted=int(item.granted),
        remaining=int(item.remaining),
        created_at=int(item.created_at),
        expires_at=None if item.expires_at is None else int(item.expires_at),
        priority=int(item.priority),
        price_minor=None if item.price_minor is None else int(item.price_minor),
        currency=item.currency,
        package_id=item.package_id,
        reason=item.reason,
        licences=None if item.licences is None else tuple(sorted(item.licences)),
        features=None if item.features is None else tuple(sorted(item.features)),
        priority_processing=bool(item.priority_processing),
        unlocks=tuple(sorted(item.unlocks or ())),
        campaign_id=item.campaign_id,
        plan_id=item.plan_id,
        warned=bool(item.warned),
        expiry_grace=int(item.expiry_grace or 0),
    )


def _lot_item(pk: str, lot: Lot) -> LotItem:
    return LotItem(
        pk,
        Keys.lot(lot.lot_id),
        lot_id=lot.lot_id,
        source=lot.source,
        granted=lot.granted,
        remaining=lot.remaining,
        created_at=lot.created_at,
        expires_at=lot.expires_at,
        priority=lot.priority,
        price_minor=lot.price_minor,
        currency=lot.currency,
        package_id=lot.package_id,
        reason=lot.reason,
        licences=None if lot.licences is None else set(lot.licences),
        features=None if lot.features is None else set(lot.features),
        priority_processing=lot.priority_processing or None,
        unlocks=set(lot.unlocks) or None,
        campaign_id=lot.campaign_id,
        plan_id=lot.plan_id,
        warned=lot.warned or None,
        expiry_grace=lot.expiry_grace or None,
    )


# The summary of a lot kept on the account item: what the sweep needs to write it off.
_SUMMARY_FIELDS = {
    "id": "lot_id",
    "src": "source",
    "g": "granted",
    "r": "remaining",
    "c": "created_at",
    "e": "expires_at",
    "pr": "priority",
    "p": "price_minor",
    "cur": "currency",
    "pkg": "package_id",
    "plan": "plan_id",
    "w": "warned",
    "gr": "expiry_grace",
}


def _lot_summary(lot: Lot) -> dict[str, Any]:
    return {short: getattr(lot, name) for short, name in _SUMMARY_FIELDS.items()}


def _lot_from_summary(summary: dict[str, Any]) -> Lot:
    return Lot(**{name: summary[short] for short, name in _SUMMARY_FIELDS.items()})


def _account_from_item(item: AccountItem, lots: tuple[Lot, ...] | None = None) -> Account:
    """The account as its item holds it; without ``lots``, its lots are the expiring summary."""
    if lots is None:
        lots = tuple(_lot_from_summary(summary) for summary in item.expiring_lots or [])
    return Account(
        account_id=item.account_id,
        version=int(item.version),
        seq=int(item.version if item.seq is None else item.seq),  # items written before seq existed
        balance=int(item.balance),
        granted=int(item.granted),
        consumed=int(item.consumed),
        expired=int(item.expired),
        arrears=int(item.arrears or 0),
        lots=lots,
        pending_events=tuple(item.pending_events or ()),
    )


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
        self.expiry = expiry or ExpiryIndexing()
        # DynamoDB takes 100 items per transaction; older DynamoDB Local builds take 10.
        self.max_transaction_items = max_transaction_items
        for model in (TableItem, AccountItem, LotItem, LedgerItem, IdempotencyItem, PaymentItem):
            model._connection = None
        self._connection = Connection(region=region, host=endpoint_url)

    # -- reads ---------------------------------------------------------------

    def load_account(self, account_id: str) -> Account:
        """The account and all its lots in one consistent Query; a new account reads as empty."""
        pk = Keys.account(account_id)
        account: AccountItem | None = None
        lots: list[Lot] = []
        with _storage_errors():
            for item in TableItem.query(pk, TableItem.sk.startswith(Keys.ACCOUNT_SK), consistent_read=True):
                if isinstance(item, AccountItem):
                    account = item
                elif isinstance(item, LotItem):
                    lots.append(_lot_from_item(item))
        if account is None:
            return Account(account_id=account_id)
        return _account_from_item(account, tuple(lots))

    def load_expiry_view(self, account_id: str) -> Account | None:
        """The account item alone (one consistent GetItem): its lots are the live expiring ones."""
        with _storage_errors():
            try:
                item = AccountItem.get(Keys.account(account_id), Keys.ACCOUNT_SK, consistent_read=True)
            except AccountItem.DoesNotExist:
                return None
        return _account_from_item(item)

    def accounts_due(self, shard: int, now: int, page_size: int = 100) -> Iterator[Account]:
        """Accounts in one shard of the expiry index with work due at ``now``, soonest first.

        Each comes with its live expiring lots; it reads one index item per account."""
        shard_key = f"EXPIRY#{shard:03d}"
        with _storage_errors():
            for item in AccountItem.expiry_index.query(shard_key, AccountItem.next_due_at <= now, page_size=page_size):
                yield _account_from_item(item)

    def find_idempotency_record(self, account_id: str, key: str) -> IdempotencyRecord | None:
        with _storage_errors():
            try:
                item = IdempotencyItem.get(Keys.account(account_id), Keys.idempotency(key), consistent_read=True)
            except IdempotencyItem.DoesNotExist:
                return None
        return IdempotencyRecord(
            key=item.key,
            fingerprint=item.fingerprint,
            status_code=int(item.status_code),
            body=json.loads(item.body),
            seq=int(item.version if item.seq is None else item.seq),  # items written before seq existed
        )

    def list_entries(self, account_id: str, limit: int, before_seq: int | None = None) -> LedgerPage:
        """Ledger entries newest first; ``before_seq`` continues from an earlier page."""
        if before_seq is not None and before_seq <= 1:
            return LedgerPage([], None)
        condition = (
            TableItem.sk.startswith(Keys.LEDGER_PREFIX)
            if before_seq is None
            else TableItem.sk.between(Keys.entry(1), Keys.entry(before_seq - 1))
        )
        with _storage_errors():
            results = LedgerItem.query(
                Keys.account(account_id), condition, scan_index_forward=False, limit=limit, page_size=limit
            )
            entries = [_entry_from_item(item) for item in results if isinstance(item, LedgerItem)]
        more = len(entries) == limit and entries[-1].seq > 1
        return LedgerPage(entries, entries[-1].seq if more else None)

    # -- writes --------------------------------------------------------------

    def _account_item(self, account: Account, now: int) -> AccountItem:
        """The account item for a state, with the sweep's summary and index keys."""
        live_expiring = [lot for lot in account.lots if lot.expires_at is not None and lot.remaining > 0]
        due = next_due_at(account, self.expiry.warning_window)
        return AccountItem(
            Keys.account(account.account_id),
            Keys.ACCOUNT_SK,
            account_id=account.account_id,
            version=account.version,
            seq=account.seq,
            balance=account.balance,
            granted=account.granted,
            consumed=account.consumed,
            expired=account.expired,
            arrears=account.arrears or None,
            updated_at=now,
            expiring_lots=[_lot_summary(lot) for lot in live_expiring] or None,
            pending_events=list(account.pending_events) or None,
            expiry_shard=None if due is None else Keys.expiry_shard(account.account_id, self.expiry.shards),
            next_due_at=due,
        )

    def seed(self, accounts: list[Account], now: int) -> None:
        """Bulk-load accounts and their lots as they stand, with no ledger history (benchmarks
        and fixtures only: nothing here is guarded, and the ledger will not add up)."""
        with _storage_errors(), AccountItem.batch_write() as batch:
            for account in accounts:
                batch.save(self._account_item(account, now))
                for lot in account.lots:
                    batch.save(_lot_item(Keys.account(account.account_id), lot))

    def apply(self, mutation: Mutation, now: int) -> None:
        """Write a mutation all-or-nothing, guarded by the account version it was computed from."""
        pk = Keys.account(mutation.account.account_id)
        after = mutation.account_after
        # Each item with the guard it must pass, and what a failure of that guard means.
        puts: list[tuple[Model, Any, str]] = [
            (
                self._account_item(after, now),
                AccountItem.pk.does_not_exist()
                if mutation.account.version == 0
                else AccountItem.version == mutation.account.version,
                WriteConflict.VERSION,
            )
        ]
        # Idempotency records first, after the account: a conflict names the keys already used.
        for record in mutation.records:
            idempotency_item = IdempotencyItem(
                pk,
                Keys.idempotency(record.key),
                key=record.key,
                fingerprint=record.fingerprint,
                status_code=record.status_code,
                body=json.dumps(record.body, separators=(",", ":")),
                seq=record.seq,
                created_at=now,
            )
            puts.append((idempotency_item, IdempotencyItem.pk.does_not_exist(), WriteConflict.IDEMPOTENCY_KEY))
        for written in mutation.entries:
            ledger_item = LedgerItem(
                pk,
                Keys.entry(written.seq),
                entry_id=written.entry_id,
                seq=written.seq,
                kind=written.kind,
                amount=written.amount,
                balance_after=written.balance_after,
                created_at=written.created_at,
                idempotency_key=written.idempotency_key,
                details=written.details,
            )
            puts.append((ledger_item, LedgerItem.pk.does_not_exist(), WriteConflict.VERSION))
        puts += [(_lot_item(pk, lot), LotItem.pk.does_not_exist(), WriteConflict.VERSION) for lot in mutation.new_lots]
        entry = mutation.entry
        if mutation.payment_reference is not None and entry is not None:
            payment = PaymentItem(
                Keys.payment(mutation.payment_reference),
                Keys.PAYMENT_SK,
                account_id=after.account_id,
                entry_id=entry.entry_id,
                seq=entry.seq,
            )
            puts.append((payment, PaymentItem.pk.does_not_exist(), WriteConflict.PAYMENT_REFERENCE))

        def lot_update(lot_id: str, actions: list[Any], condition: Any) -> tuple[Model, list[Any], Any]:
            return LotItem(pk, Keys.lot(lot_id)), actions, condition

        updates = [
            lot_update(
                draw.lot_id,
                [LotItem.remaining.add(-draw.amount)],
                (LotItem.remaining >= draw.amount) & (LotItem.expires_at.does_not_exist() | (LotItem.expires_at > now)),
            )
            for draw in mutation.draws
        ]
        # A rollover moves credits out of a lot that may have just expired.
        updates += [
            lot_update(t.lot_id, [LotItem.remaining.add(-t.amount)], LotItem.remaining >= t.amount)
            for t in mutation.transfers
        ]
        # A write-off takes exactly what is left, and only once the lot has expired.
        updates += [
            lot_update(
                x.lot_id, [LotItem.remaining.set(0)], (LotItem.remaining == x.amount) & (LotItem.expires_at <= now)
            )
            for x in mutation.expirations
        ]
        updates += [lot_update(lot_id, [LotItem.warned.set(True)], LotItem.pk.exists()) for lot_id in mutation.warned]

        try:
            with TransactWrite(connection=self._connection) as transaction:
                for item, condition, _ in puts:
                    transaction.save(item, condition=condition)
                for lot_item, actions, condition in updates:
                    transaction.update(lot_item, actions=actions, condition=condition)
        except TransactWriteError as error:
            raise _conflict(error, [meaning for _, _, meaning in puts], [r.key for r in mutation.records]) from error
        except PynamoDBException as error:
            raise StorageUnavailable("the ledger store failed; retry the request") from error


def _conflict(error: TransactWriteError, meanings: list[str], keys: list[str]) -> Exception:
    """What a cancelled transaction means, from the guards that failed (puts come first:
    the account, then one idempotency record per key, in order)."""
    if error.cause_response_code != "TransactionCanceledException":
        return StorageUnavailable("the ledger store failed; retry the request")
    reasons = list(error.cancellation_reasons or [])
    if not reasons:
        return WriteConflict(WriteConflict.UNKNOWN)
    failed_at = [
        i for i, reason in enumerate(reasons) if reason is not None and reason.code == "ConditionalCheckFailed"
    ]
    failed = {meanings[i] for i in failed_at if i < len(meanings)}
    if WriteConflict.IDEMPOTENCY_KEY in failed:
        used = {keys[i - 1] for i in failed_at if 1 <= i <= len(keys)}
        return WriteConflict(WriteConflict.IDEMPOTENCY_KEY, used)
    if WriteConflict.PAYMENT_REFERENCE in failed:
        return WriteConflict(WriteConflict.PAYMENT_REFERENCE)
    # Version guard, a lot guard, or DynamoDB's own TransactionConflict: all mean "reload".
    return WriteConflict(WriteConflict.VERSION)


@contextmanager
def _storage_errors() -> Iterator[None]:
    """Turn any PynamoDB/botocore failure on a read into a domain error with no AWS text."""
    try:
        yield
    except PynamoDBException as error:
        raise StorageUnavailable("the ledger store failed; retry the request") from error
