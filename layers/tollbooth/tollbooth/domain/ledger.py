"""Ledger rules: lots, burn-down order, allocation and the mutations they produce.

Pure Python over plain dataclasses. The repository persists a ``Mutation`` in one
DynamoDB transaction guarded by the account's version; nothing here does I/O.

Invariants (checked by the tests):
* every lot has 0 < remaining <= granted: a lot leaves the account with its last credit
  (its terms live on in the ledger entry that granted it), so loading an account reads
  only what can still be spent or written off, however long its history;
* account.balance == sum(lot.remaining) - sum(intent draws) - arrears
  == granted - consumed - expired - clawed_back;
* each mutation bumps account.version by one; one that moves credits appends ledger
  entry #seq, so entries are numbered 1, 2, 3... with no gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from tollbooth.domain import ids
from tollbooth.domain.errors import FeatureLocked, InsufficientCredits
from tollbooth.domain.money import format_credits

LotSource = Literal["purchase", "bonus", "promotional", "adjustment", "allowance", "rollover"]
EntryKind = Literal["purchase", "grant", "allowance", "consume", "usage", "expire", "refund"]
# Entries that spend credits (through the API, or usage reported by workers).
SPENDING_KINDS = ("consume", "usage")

# Lower numbers are spent first when expiry ties (Stripe-style priority). A subscription
# allowance (and what rolled over into it) goes before purchased credits that expire at
# the same instant.
DEFAULT_PRIORITY: dict[str, int] = {
    "promotional": 10,
    "rollover": 12,
    "allowance": 15,
    "bonus": 20,
    "adjustment": 30,
    "purchase": 50,
}


@dataclass(frozen=True)
class Use:
    """What a debit pays for: lots restricted to other licences or features may not pay."""

    feature: str
    licence: str
    locked: bool = False  # the feature needs a spendable lot that unlocks it
    unlocked_by: tuple[str, ...] = ()  # the packages and plans that would unlock it


@dataclass(frozen=True)
class Lot:
    lot_id: str
    source: LotSource
    granted: int
    remaining: int
    created_at: int
    expires_at: int | None = None
    priority: int = 50
    price_minor: int | None = None
    currency: str | None = None
    package_id: str | None = None
    reason: str | None = None
    # Restrictions (None = any) and perks, copied from the package or plan at grant time.
    licences: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None
    priority_processing: bool = False
    unlocks: tuple[str, ...] = ()
    campaign_id: str | None = None
    plan_id: str | None = None
    # Expiry bookkeeping: the credits.expiring warning went out; and how long after
    # expires_at the sweep waits before writing the lot off (a rollover's grace).
    warned: bool = False
    expiry_grace: int = 0

    def spendable_at(self, now: int) -> bool:
        # A lot is dead at its expires_at instant, whether or not a sweep has run.
        return self.remaining > 0 and (self.expires_at is None or now < self.expires_at)

    def pays_for(self, use: Use) -> bool:
        return (self.licences is None or use.licence in self.licences) and (
            self.features is None or use.feature in self.features
        )


@dataclass(frozen=True)
class Draw:
    lot_id: str
    amount: int


@dataclass(frozen=True)
class PlanPeriod:
    """The latest allowance period a plan granted: kept on the account, so that a period's
    end outlives the lot that carried it (a spent allowance still defines the period)."""

    plan_id: str
    granted_at: int
    ends_at: int


@dataclass(frozen=True)
class Intent:
    """Lot draws a committed mutation still owes: the one exception to one transaction per
    mutation (``domain.intents``). The entry, the totals and the idempotency records are
    committed; the draws are applied by the next writer or the sweep before anything else."""

    entry_id: str
    draws: tuple[Draw, ...]


@dataclass(frozen=True)
class Account:
    account_id: str
    version: int = 0
    balance: int = 0
    granted: int = 0
    consumed: int = 0
    expired: int = 0
    lots: tuple[Lot, ...] = ()
    seq: int = 0  # ledger entries written so far
    # Usage already performed that the account's credits could not pay for (issue: arrears).
    # The ledger balance is sum(lot.remaining) - arrears, and may be negative.
    arrears: int = 0
    # Credits refunds took back: from the lots, or (their policy being debt) into arrears.
    clawed_back: int = 0
    # Events committed with a change but not yet published (the outbox).
    pending_events: tuple[dict[str, Any], ...] = ()
    periods: tuple[PlanPeriod, ...] = ()
    intent: Intent | None = None
    # Only on the sweep's view of an account (its item alone), when the account holds more
    # live expiring lots than the item summarises: when the soonest of those is next due.
    unsummarized: int | None = None

    def available_at(self, now: int) -> int:
        return sum(lot.remaining for lot in self.lots if lot.spendable_at(now))


@dataclass(frozen=True)
class Expiry:
    expires_at: int
    amount: int


@dataclass(frozen=True)
class LedgerEntry:
    entry_id: str
    seq: int
    kind: EntryKind
    amount: int  # signed: credits in are positive, credits out negative
    balance_after: int
    created_at: int
    idempotency_key: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def next_entry(
    account: Account, kind: EntryKind, amount: int, now: int, key: str | None, details: dict[str, Any]
) -> LedgerEntry:
    """The account's next ledger entry: numbered after its last, with the balance it leaves."""
    entry_id = ids.new_id("led", now)
    return LedgerEntry(entry_id, account.seq + 1, kind, amount, account.balance + amount, now, key, details)


# Keys Tollbooth derives itself (one allowance per account, plan and period) use this
# prefix, which a client's Idempotency-Key may not.
RESERVED_KEY_PREFIX = "tollbooth:"


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    fingerprint: str
    status_code: int
    body: dict[str, Any]
    seq: int


@dataclass(frozen=True)
class PaymentRefund:
    """The money refunded of a payment so far, before and after a refund: the write is
    guarded by ``before``, so refunds of one payment never add up to more than it paid."""

    reference: str
    before_minor: int
    after_minor: int


@dataclass(frozen=True)
class Mutation:
    """Everything one change to an account writes, all-or-nothing."""

    account: Account  # the state it was computed from; its version is the guard
    entries: tuple[LedgerEntry, ...] = ()  # none: bookkeeping only (warnings, the outbox)
    records: tuple[IdempotencyRecord, ...] = ()  # the answer kept for each idempotency key
    draws: tuple[Draw, ...] = ()
    new_lots: tuple[Lot, ...] = ()
    payment_reference: str | None = None
    # Credits moved out of old lots into one of ``new_lots`` (a rollover): the balance is
    # unchanged by them, and they may come from a lot past its expiry.
    transfers: tuple[Draw, ...] = ()
    # Lots written off by the expiry sweep: each Draw is the lot's whole remaining amount.
    expirations: tuple[Draw, ...] = ()
    warned: tuple[str, ...] = ()  # lots whose credits.expiring warning has gone out
    pending_events: tuple[dict[str, Any], ...] | None = None  # the outbox afterwards; None: as before
    arrears_change: int = 0  # usage left unpaid (positive), or arrears paid off by new credits (negative)
    intent_after: Intent | None = None  # lot draws still owed once this transaction commits
    refund: PaymentRefund | None = None  # what a payment has had refunded, before and after

    @property
    def lot_changes(self) -> int:
        return len(self.draws) + len(self.transfers) + len(self.expirations) + len(self.warned)

    @property
    def transaction_items(self) -> int:
        """The items one transaction writes for this mutation: the account, the idempotency
        records, the entries, the new lots still holding credits, the payment, each lot
        changed, and the intent (written, rewritten or deleted)."""
        puts = len(self.records) + len(self.entries) + sum(1 for lot in self.new_lots if lot.remaining > 0)
        payment = int(self.payment_reference is not None and bool(self.entries))
        intent = int(self.account.intent is not None or self.intent_after is not None)
        return 1 + puts + payment + self.lot_changes + intent

    @cached_property
    def emptied(self) -> frozenset[str]:
        """The lots this mutation takes the last credit from: they leave the store."""
        remaining = {lot.lot_id: lot.remaining for lot in self.account.lots}
        return frozenset(
            draw.lot_id
            for draw in self.draws + self.transfers + self.expirations
            if remaining.get(draw.lot_id) == draw.amount
        )

    @property
    def entry(self) -> LedgerEntry | None:
        return self.entries[0] if self.entries else None

    @property
    def idempotency(self) -> IdempotencyRecord | None:
        return self.records[0] if self.records else None

    @cached_property
    def account_after(self) -> Account:
        """The exact state once written: the version guard rules out any change in between."""
        amounts = [(entry.kind, entry.amount) for entry in self.entries]
        amount = sum(value for _, value in amounts)
        drawn: dict[str, int] = {}
        for draw in self.draws + self.transfers + self.expirations:
            drawn[draw.lot_id] = drawn.get(draw.lot_id, 0) + draw.amount
        lots = tuple(
            replace(
                lot,
                remaining=lot.remaining - drawn.get(lot.lot_id, 0),
                warned=lot.warned or lot.lot_id in self.warned,
            )
            for lot in self.account.lots
        )
        return replace(
            self.account,
            lots=tuple(lot for lot in lots + self.new_lots if lot.remaining > 0),
            periods=with_periods(self.account.periods, self.new_lots),
            intent=self.intent_after,
            version=self.account.version + 1,
            seq=self.entries[-1].seq if self.entries else self.account.seq,
            balance=self.account.balance + amount,
            granted=self.account.granted + sum(value for _, value in amounts if value > 0),
            consumed=self.account.consumed - sum(value for kind, value in amounts if kind in SPENDING_KINDS),
            expired=self.account.expired - sum(value for kind, value in amounts if kind == "expire"),
            clawed_back=self.account.clawed_back - sum(value for kind, value in amounts if kind == "refund"),
            arrears=self.account.arrears + self.arrears_change,
            pending_events=self.account.pending_events if self.pending_events is None else self.pending_events,
        )


def with_periods(periods: tuple[PlanPeriod, ...], new_lots: tuple[Lot, ...]) -> tuple[PlanPeriod, ...]:
    """The latest period of each plan, once ``new_lots`` are granted."""
    latest = {period.plan_id: period for period in periods}
    for lot in new_lots:
        if lot.source == "allowance" and lot.plan_id is not None and lot.expires_at is not None:
            known = latest.get(lot.plan_id)
            if known is None or lot.expires_at > known.ends_at:
                latest[lot.plan_id] = PlanPeriod(lot.plan_id, lot.created_at, lot.expires_at)
    return tuple(latest[plan_id] for plan_id in sorted(latest))


def burn_down_order(lots: tuple[Lot, ...] | list[Lot]) -> list[Lot]:
    """Earliest expiry first, never-expiring last; ties by priority, then age."""
    return sorted(
        lots,
        key=lambda lot: (lot.expires_at is None, lot.expires_at or 0, lot.priority, lot.created_at, lot.lot_id),
    )


def allocate(account: Account, amount: int, now: int, use: Use | None = None) -> tuple[Draw, ...]:
    """Pick the lots that may pay for ``use`` and pay ``amount`` in burn-down order.

    Raises FeatureLocked when the feature needs an unlocking lot the account lacks, and
    InsufficientCredits (naming the kind of credits missing) when the eligible lots are short.
    """
    if account.arrears > 0:
        # Usage already performed went unpaid: new credits pay it off before anything else.
        raise InsufficientCredits(
            f"the account owes {format_credits(account.arrears)} credits of usage; a purchase or grant pays it off",
            required=amount,
            available=0,
        )
    spendable = [lot for lot in account.lots if lot.spendable_at(now)]
    if use is not None and use.locked and not any(use.feature in lot.unlocks for lot in spendable):
        raise FeatureLocked(
            f"{use.feature!r} needs credits from one of {list(use.unlocked_by)}", allowed=list(use.unlocked_by)
        )
    eligible = spendable if use is None else [lot for lot in spendable if lot.pays_for(use)]
    available = sum(lot.remaining for lot in eligible)
    if amount > available:
        if use is None:
            raise InsufficientCredits("not enough credits for this request", required=amount, available=available)
        restricted = account.available_at(now) - available
        message = f"not enough credits that may pay for {use.feature!r} under a {use.licence!r} licence"
        if restricted:
            message += f" ({format_credits(restricted)} more credits on the account may not)"
        raise InsufficientCredits(
            message, required=amount, available=available, missing={"licence": use.licence, "feature": use.feature}
        )
    draws, _ = take_in_order(eligible, amount)
    return draws


def take_in_order(lots: list[Lot], amount: int) -> tuple[tuple[Draw, ...], int]:
    """Take up to ``amount`` from ``lots`` in burn-down order: the draws, and what is left untaken."""
    draws = []
    left = amount
    for lot in burn_down_order(lots):
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            draws.append(Draw(lot.lot_id, take))
        left -= take
    return tuple(draws), left


def next_expiry(account: Account, now: int) -> Expiry | None:
    """The earliest future expiry instant and the total that expires then."""
    upcoming = [lot for lot in account.lots if lot.spendable_at(now) and lot.expires_at is not None]
    if not upcoming:
        return None
    first = min(lot.expires_at for lot in upcoming if lot.expires_at is not None)
    return Expiry(first, sum(lot.remaining for lot in upcoming if lot.expires_at == first))


@dataclass(frozen=True)
class Perks:
    priority_processing: bool
    unlocked_features: tuple[str, ...]


def perks_at(account: Account, now: int) -> Perks:
    """Perks live on lots, and last while those lots hold spendable credits."""
    spendable = [lot for lot in account.lots if lot.spendable_at(now)]
    return Perks(
        priority_processing=any(lot.priority_processing for lot in spendable),
        unlocked_features=tuple(sorted({feature for lot in spendable for feature in lot.unlocks})),
    )


def draw_what_lots_can(account: Account, amount: int, now: int, use: Use) -> tuple[tuple[Draw, ...], int]:
    """For usage already performed: draw what the lots that may pay for ``use`` can, in
    burn-down order, and return the draws and what is left unpaid (it becomes arrears)."""
    return take_in_order([lot for lot in account.lots if lot.spendable_at(now) and lot.pays_for(use)], amount)


def with_draws(account: Account, draws: tuple[Draw, ...]) -> Account:
    """The account with ``draws`` taken out of its lots (to allocate several debits in a row)."""
    taken = {draw.lot_id: draw.amount for draw in draws}
    return replace(
        account, lots=tuple(replace(x, remaining=x.remaining - taken.get(x.lot_id, 0)) for x in account.lots)
    )


def pay_off_arrears(lots: list[Lot], arrears: int) -> tuple[list[Lot], int]:
    """New lots with arrears taken out of them first, soonest-expiring first; and what was paid."""
    draws, left = take_in_order(lots, arrears)
    paid = {draw.lot_id: draw.amount for draw in draws}
    return [replace(lot, remaining=lot.remaining - paid.get(lot.lot_id, 0)) for lot in lots], arrears - left


@dataclass(frozen=True)
class ExpiryIndexing:
    """How accounts are indexed for the sweep: the warning window (ms), the index's shard
    count, and how many of an account's live expiring lots its item summarises (the soonest
    due; the sweep reads the rest when their time comes, so the item stays small)."""

    warning_window: int = 7 * 86_400_000
    shards: int = 8
    summary_lots: int = 16
