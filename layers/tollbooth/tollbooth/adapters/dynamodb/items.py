"""The table's items (PynamoDB models), and how domain values map onto them. Separate from
the domain dataclasses on purpose: a lot's stored shape is spelled here and nowhere else."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from tollbooth.adapters.entry_details import compressed, expanded
from tollbooth.adapters.keys import Keys
from tollbooth.adapters.lot_attributes import (
    claims_from_stored,
    claims_stored,
    escrow_from_stored,
    escrow_stored,
    hold_refs_from_stored,
    hold_refs_stored,
    hold_stored,
    intent_from_stored,
    intent_stored,
    lot_attributes,
    lot_from_attributes,
    lot_from_summary,
    lot_summary,
    periods_from_stored,
    periods_stored,
    slice_from_stored,
    slice_stored,
    spills_from_stored,
    spills_stored,
    summaries_json,
    unsettled_from_stored,
    unsettled_stored,
)
from tollbooth.domain import ids
from tollbooth.domain.expiry import ExpiryIndexing, expiry_summary
from tollbooth.domain.hold_state import Hold, hold_due_at
from tollbooth.domain.ledger import Account, Intent, LedgerEntry, Lot, Slice
from tollbooth.domain.unsettled import as_read


class ExpiryIndex(GlobalSecondaryIndex["TableItem"]):
    """Sparse: only the accounts and holds the sweep will have work on carry its keys."""

    class Meta:
        index_name = "ExpiryIndex"
        projection = AllProjection()

    expiry_shard = UnicodeAttribute(hash_key=True)
    next_due_at = NumberAttribute(range_key=True)


class TableItem(Model):
    class Meta:
        table_name: str | None = None
        region = "us-east-1"
        host: str | None = None
        # Set by the Repository (adapters.dynamodb.store): the calls' timeouts and retries.
        connect_timeout_seconds: float = 15
        read_timeout_seconds: float = 30
        max_retry_attempts: int = 3

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    item_type = DiscriminatorAttribute(attr_name="type")
    # The expiry index's keys: on an account, and on a hold of a slice's, the sweep has work on.
    expiry_shard = UnicodeAttribute(null=True)
    next_due_at = NumberAttribute(null=True)
    expiry_index = ExpiryIndex()

    @classmethod
    def _get_connection(cls) -> Any:
        # Every kind of item lives in this one table: one connection, so one botocore client
        # (a client costs a cold start its creation, and, made on a thread, that thread's session).
        if cls is not TableItem:
            return TableItem._get_connection()
        return super()._get_connection()


class CompactJSONAttribute(JSONAttribute):
    """JSON without spaces after its separators (``summaries_json``), as the twin stores it:
    the account item's lot summaries and unsettled credits count against its 1 KB."""

    def serialize(self, value: Any) -> str | None:
        return None if value is None else summaries_json(value)


class AccountItem(TableItem, discriminator="account"):
    account_id = UnicodeAttribute()
    version = NumberAttribute()
    seq = NumberAttribute()
    balance = NumberAttribute()
    granted = NumberAttribute()
    consumed = NumberAttribute()
    expired = NumberAttribute()
    arrears = NumberAttribute(null=True)
    clawed_back = NumberAttribute(null=True)  # absent until a refund
    adjusted = NumberAttribute(null=True)  # absent until an adjustment
    voided = NumberAttribute(null=True)  # absent until a void
    reversed = NumberAttribute(null=True)  # absent until a reversal
    updated_at = NumberAttribute()
    expiring_lots = CompactJSONAttribute(null=True)  # the soonest-due live expiring lots, for the sweep
    unsummarized = NumberAttribute(null=True)  # when the live expiring lots beyond it are next due
    pending_events = JSONAttribute(null=True)  # the outbox
    spilled = JSONAttribute(null=True)  # older events moved to items of their own: [[key, events]]
    periods = JSONAttribute(null=True)  # the latest period of each plan: [[plan_id, granted_at, ends_at]]
    intent_id = UnicodeAttribute(null=True)  # an intent owes lot draws: load the account in full
    escrow = JSONAttribute(null=True)  # what each escrow slice holds of it: [[slice, received, due_at]]
    streams = JSONAttribute(null=True)  # the slices that have written entries: [slice]
    holds = JSONAttribute(null=True)  # its open holds: [[hold_id, credits, expires_at]]
    disputed = JSONAttribute(null=True)  # lots of payments under an open dispute: [lot_id]
    clawing = JSONAttribute(null=True)  # what refunds and voids still claim: [[lot_id, owed, kind, expires_at]]
    unsettled = CompactJSONAttribute(
        null=True
    )  # credits spent from lots whose items still hold them: [[lot_id, credits]]


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
    frozen = BooleanAttribute(null=True)  # absent unless a dispute froze it
    grant_seq = NumberAttribute(null=True)  # the entry that granted it (absent on lots from before)


class SliceItem(TableItem, discriminator="slice"):
    """An escrow slice (``domain.slices``), on a partition of its own."""

    account_id = UnicodeAttribute()
    index = NumberAttribute()
    version = NumberAttribute()
    portions = JSONAttribute(null=True)  # each a lot's attributes, holding what the slice has of it
    consumed = NumberAttribute()
    seq = NumberAttribute()
    last_at = NumberAttribute()
    holds = JSONAttribute(null=True)  # open holds placed on it: [[hold_id, credits, expires_at, [dues]]]
    # The account's lots under dispute or claimed, as of its last write with it.
    through_account = JSONAttribute(null=True)


class LedgerItem(TableItem, discriminator="entry"):
    entry_id = UnicodeAttribute()
    seq = NumberAttribute()
    slice = NumberAttribute(null=True)  # the slice that wrote it (in the slice's partition)
    kind = UnicodeAttribute()
    amount = NumberAttribute()
    balance_after = NumberAttribute(null=True)  # none on a slice's entries
    created_at = NumberAttribute()
    idempotency_key = UnicodeAttribute(null=True)
    details = JSONAttribute(null=True)
    details_z = BinaryAttribute(null=True, legacy_encoding=False)  # details past 1 KB, compressed


class IdempotencyItem(TableItem, discriminator="idempotency"):
    key = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    status_code = NumberAttribute()
    body = UnicodeAttribute()  # the exact JSON first returned
    seq = NumberAttribute()
    created_at = NumberAttribute()


class IntentItem(TableItem, discriminator="intent"):
    entry_id = UnicodeAttribute()
    draws = JSONAttribute()  # [[lot_id, amount]] still owed
    returns = JSONAttribute(null=True)  # [[lot_id, amount]] still going back into lots
    remade = JSONAttribute(null=True)  # lots still to be made again, as a slice's portions are stored


class PaymentItem(TableItem, discriminator="payment"):
    account_id = UnicodeAttribute()
    entry_id = UnicodeAttribute()
    seq = NumberAttribute()
    refunded_minor = NumberAttribute(null=True)  # absent until the first refund
    dispute = UnicodeAttribute(null=True)  # absent until a dispute: opened, won or lost


class HoldItem(TableItem, discriminator="hold"):
    """A hold (``domain.holds``): kept once closed, so that it is captured once, ever."""

    hold_id = UnicodeAttribute()
    status = UnicodeAttribute()
    credits = NumberAttribute()
    placed_at = NumberAttribute()
    expires_at = NumberAttribute()
    licence = UnicodeAttribute()
    feature = UnicodeAttribute(null=True)
    quantity = NumberAttribute(null=True)
    dimensions = JSONAttribute(null=True)
    catalog_version = UnicodeAttribute(null=True)
    captured = NumberAttribute()
    closed_at = NumberAttribute(null=True)
    portions = JSONAttribute(null=True)  # each a lot's attributes, holding what the hold has of it
    account_id = UnicodeAttribute(null=True)
    pending_events = JSONAttribute(null=True)  # a slice's hold: its events until the sweep publishes them


def hold_item(account_id: str, hold: Hold, shards: int) -> HoldItem:
    """A hold's item; one placed on a slice carries the expiry index's keys while the sweep
    has work on it (its events to publish, its expiry)."""
    due = hold_due_at(hold) if ids.hold_slice(hold.hold_id) is not None else None
    shard = None if due is None else Keys.expiry_shard(account_id, shards)
    pk, sk = Keys.hold(account_id, hold.hold_id)
    return HoldItem(pk, sk, account_id=account_id, **hold_stored(hold), expiry_shard=shard, next_due_at=due)


class SpillItem(TableItem, discriminator="outbox"):
    events = JSONAttribute()  # an outbox moved off the account item, oldest first


class ReversalItem(TableItem, discriminator="reversal"):
    reversed = NumberAttribute()  # credits given back of the charge so far


def entry_from_item(item: LedgerItem) -> LedgerEntry:
    return LedgerEntry(
        entry_id=item.entry_id,
        seq=int(item.seq),
        kind=item.kind,  # type: ignore[arg-type]
        amount=int(item.amount),
        balance_after=None if item.balance_after is None else int(item.balance_after),
        created_at=int(item.created_at),
        idempotency_key=item.idempotency_key,
        details=expanded(item.details_z) if item.details_z is not None else item.details or {},
        slice=None if item.slice is None else int(item.slice),
    )


def ledger_item(account_id: str, entry: LedgerEntry) -> LedgerItem:
    packed = compressed(entry.details)
    return LedgerItem(
        Keys.stream(account_id, entry.slice),
        Keys.entry(entry.seq),
        entry_id=entry.entry_id,
        seq=entry.seq,
        slice=entry.slice,
        kind=entry.kind,
        amount=entry.amount,
        balance_after=entry.balance_after,
        created_at=entry.created_at,
        idempotency_key=entry.idempotency_key,
        details=None if packed else entry.details,
        details_z=packed,
    )


def lot_from_item(item: LotItem) -> Lot:
    return lot_from_attributes(item.attribute_values)


def lot_item(pk: str, lot: Lot) -> LotItem:
    return LotItem(pk, Keys.lot(lot.lot_id), **lot_attributes(lot))


def intent_item(pk: str, intent: Intent) -> IntentItem:
    return IntentItem(pk, Keys.INTENT_SK, **intent_stored(intent))


def intent_from_item(item: IntentItem) -> Intent:
    return intent_from_stored(item.attribute_values)


def slice_item(account_id: str, held: Slice) -> SliceItem:
    return SliceItem(Keys.slice(account_id, held.index), Keys.SLICE_SK, account_id=account_id, **slice_stored(held))


def slice_from_item(item: SliceItem) -> Slice:
    return slice_from_stored(item.attribute_values)


def account_from_item(
    item: AccountItem,
    lots: tuple[Lot, ...] | None = None,
    intent: Intent | None = None,
    slices: tuple[Slice, ...] = (),
) -> Account:
    """The account as its item holds it; without ``lots``, its lots are the expiring summary
    (the sweep's view, which also says when the lots beyond the summary are due)."""
    view = lots is None
    unsettled = unsettled_from_stored(item.unsettled)
    if lots is None:
        lots = tuple(lot_from_summary(summary) for summary in item.expiring_lots or [])
    else:
        lots = as_read(lots, unsettled)
    return Account(
        account_id=item.account_id,
        version=int(item.version),
        seq=int(item.seq),
        balance=int(item.balance),
        granted=int(item.granted),
        consumed=int(item.consumed),
        expired=int(item.expired),
        arrears=int(item.arrears or 0),
        clawed_back=int(item.clawed_back or 0),
        adjusted=int(item.adjusted or 0),
        voided=int(item.voided or 0),
        reversed=int(item.reversed or 0),
        lots=lots,
        pending_events=tuple(item.pending_events or ()),
        spilled=spills_from_stored(item.spilled),
        periods=periods_from_stored(item.periods),
        intent=intent,
        unsummarized=int(item.unsummarized) if view and item.unsummarized is not None else None,
        escrow=escrow_from_stored(item.escrow),
        streams=tuple(int(index) for index in item.streams or ()),
        slices=slices,
        holds=hold_refs_from_stored(item.holds),
        disputed=tuple(item.disputed or ()),
        clawing=claims_from_stored(item.clawing),
        unsettled=unsettled,
    )


def account_item(expiry: ExpiryIndexing, account: Account, now: int) -> AccountItem:
    """The account item for a state, with the sweep's summary and index keys."""
    summary = expiry_summary(account, expiry)
    due = summary.next_due_at
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
        clawed_back=account.clawed_back or None,
        adjusted=account.adjusted or None,
        voided=account.voided or None,
        reversed=account.reversed or None,
        updated_at=now,
        expiring_lots=[lot_summary(lot) for lot in summary.lots] or None,
        unsummarized=summary.unsummarized,
        pending_events=list(account.pending_events) or None,
        spilled=spills_stored(account.spilled),
        periods=periods_stored(account.periods),
        intent_id=None if account.intent is None else account.intent.entry_id,
        escrow=escrow_stored(account.escrow),
        streams=list(account.streams) or None,
        holds=hold_refs_stored(account.holds),
        disputed=list(account.disputed) or None,
        clawing=claims_stored(account.clawing),
        unsettled=unsettled_stored(account.unsettled),
        expiry_shard=None if due is None else Keys.expiry_shard(account.account_id, expiry.shards),
        next_due_at=due,
    )
