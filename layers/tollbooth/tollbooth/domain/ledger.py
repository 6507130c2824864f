"""Ledger rules: lots, burn-down order, allocation and the mutations they produce.

Pure Python over plain dataclasses. The repository persists a ``Mutation`` in one
DynamoDB transaction guarded by the account's version; nothing here does I/O.

Invariants (checked by the tests):
* every lot has 0 < remaining <= granted: a lot leaves the account with its last credit
  (its terms live on in the ledger entry that granted it), so loading an account reads
  only what can still be spent or written off (and at most 2 items of lots drawn to zero
  whose deletion waits, ``domain.unsettled``), however long its history;
* account.balance == sum(lot.remaining) + held - intent.owed - arrears (``held``: what
  open holds took out of the lots, ``domain.holds``)
  == granted + adjusted + reversed - consumed - expired - clawed_back - voided - escrowed:
  the account's own side, where
  ``escrowed`` is what it moved into its slices (``domain.slices``); an account with no
  escrow is whole;
* each mutation of the account bumps account.version by one; one that moves credits
  appends ledger entry #seq, so the account's own entries are numbered 1, 2, 3... with no
  gaps. A slice numbers its own entries the same way (``LedgerEntry.slice``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from tollbooth.domain import ids
from tollbooth.domain.claim_state import Claim
from tollbooth.domain.hold_state import HoldChange, HoldRef, with_hold
from tollbooth.domain.outbox_state import Spill, SpillRef, with_spills
from tollbooth.domain.period_state import PlanPeriod, with_periods
from tollbooth.domain.slice_state import Escrow, Slice, SliceMove, escrow_change, with_slices
from tollbooth.domain.unsettled import unsettled_after

LotSource = Literal["purchase", "bonus", "promotional", "adjustment", "allowance", "rollover"]
EntryKind = Literal[
    "purchase",
    "grant",
    "allowance",
    "consume",
    "usage",
    "expire",
    "refund",
    "adjustment",
    "void",
    "dispute",
    "reversal",
    "hold",
    "capture",
    "release",
]
# Entries that take credits back for money returned: refunds, and lost disputes.
CLAWING_KINDS = ("refund", "dispute")
# Entries that grant credits: purchases, grants and allowances (an adjustment is its own term).
GRANTING_KINDS = ("purchase", "grant", "allowance")
# Entries that spend credits (through the API, a hold's capture, or usage reported by workers).
SPENDING_KINDS = ("consume", "usage", "capture")

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
    # A dispute of the payment that granted it is open: its credits count in the balance,
    # but cannot be spent (nor moved into a slice) until the dispute is won.
    frozen: bool = False
    # The seq of the account's entry that granted it (its terms are recorded there): what a
    # reversal reads to put credits back into a lot that has since left the store.
    grant_seq: int | None = None

    def spendable_at(self, now: int) -> bool:
        # A lot is dead at its expires_at instant, whether or not a sweep has run.
        return self.remaining > 0 and not self.frozen and (self.expires_at is None or now < self.expires_at)

    def pays_for(self, use: Use) -> bool:
        return (self.licences is None or use.licence in self.licences) and (
            self.features is None or use.feature in self.features
        )


@dataclass(frozen=True)
class Draw:
    lot_id: str
    amount: int


@dataclass(frozen=True)
class Intent:
    """Lot changes a committed mutation still owes: the one exception to one transaction per
    mutation (``domain.intents``). The entry, the totals and the idempotency records are
    committed; the draws, the credits going back into lots (a hold's release) and the lots
    made again are applied by the next writer or the sweep before anything else."""

    entry_id: str
    draws: tuple[Draw, ...]
    returns: tuple[Draw, ...] = ()
    remade: tuple[Lot, ...] = ()

    @property
    def owed(self) -> int:
        """What the lots hold beyond the account's balance until it is applied (negative:
        credits still to come back into them)."""
        back = sum(d.amount for d in self.returns) + sum(lot.remaining for lot in self.remade)
        return sum(d.amount for d in self.draws) - back


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
    adjusted: int = 0  # operators' adjustments, net: added less taken out
    voided: int = 0  # credits removed with the lots operators voided
    reversed: int = 0  # credits charges gave back (``domain.reversals``)
    # Events committed with a change but not yet published (the outbox), and the older ones
    # moved off the account item while publishing failed (``domain.outbox_state``).
    pending_events: tuple[dict[str, Any], ...] = ()
    spilled: tuple[SpillRef, ...] = ()
    periods: tuple[PlanPeriod, ...] = ()
    intent: Intent | None = None
    # Only on the sweep's view of an account (its item alone), when the account holds more
    # live expiring lots than the item summarises: when the soonest of those is next due.
    unsummarized: int | None = None
    escrow: tuple[Escrow, ...] = ()  # the slices holding credits of the account's
    streams: tuple[int, ...] = ()  # the slices that have ever written entries
    # The slices' own state, read with the account when it has escrow (not on the sweep's view).
    slices: tuple[Slice, ...] = ()
    # Whether the slices were read while the account stood still (what a refusal that counts
    # their credits may rest on); writers kept changing it otherwise.
    consistent: bool = True
    holds: tuple[HoldRef, ...] = ()  # the open holds (``domain.holds``): their credits left the lots
    # Lots of payments under an open dispute (``domain.disputes``), wherever their credits
    # are: credits that come back from a hold into such a lot come back frozen.
    disputed: tuple[str, ...] = ()
    clawing: tuple[Claim, ...] = ()  # what refunds and voids still claim (``domain.claims``)
    unsettled: tuple[tuple[str, int], ...] = ()  # the store's own: lots' credits spent, their items unwritten

    @property
    def held(self) -> int:
        return sum(ref.credits for ref in self.holds)

    def available_at(self, now: int) -> int:
        return sum(lot.remaining for lot in self.lots if lot.spendable_at(now))

    @property
    def escrowed(self) -> int:
        return sum(escrow.received for escrow in self.escrow)

    def slice(self, index: int) -> Slice:
        """The slice's state as read with the account (an unused slice reads as empty)."""
        return next((s for s in self.slices if s.index == index), Slice(index))


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
    balance_after: int | None  # the account's balance after it; None for a slice's entries
    created_at: int
    idempotency_key: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    slice: int | None = None  # the slice that wrote it (its seq is the slice's); None: the account


def next_entry(
    account: Account, kind: EntryKind, amount: int, now: int, key: str | None, details: dict[str, Any]
) -> LedgerEntry:
    """The account's next ledger entry: numbered after its last, with the balance it leaves."""
    seq = account.seq + 1
    return LedgerEntry(ids.entry_id(now, seq), seq, kind, amount, account.balance + amount, now, key, details)


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
    guarded by ``before``, so refunds of one payment never add up to more than it paid.
    ``dispute``: its dispute's status before and after (each transition happens once)."""

    reference: str
    before_minor: int
    after_minor: int
    dispute: tuple[str | None, str] | None = None


@dataclass(frozen=True)
class ChargeReversal:
    """What a charge has had reversed so far, before and after a reversal: the write is
    guarded by ``before``, so reversals of one charge never give back more than it took."""

    charge: str  # the charge's entry_id, and the usage record's event_id if any
    before: int
    after: int


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
    frozen: tuple[str, ...] = ()  # lots a dispute freezes
    unfrozen: tuple[str, ...] = ()  # lots a dispute's end frees
    pending_events: tuple[dict[str, Any], ...] | None = None  # the outbox afterwards; None: as before
    arrears_change: int = 0  # usage left unpaid (positive), or arrears paid off by new credits (negative)
    intent_after: Intent | None = None  # lot draws still owed once this transaction commits
    refund: PaymentRefund | None = None  # what a payment has had refunded, before and after
    reversal: ChargeReversal | None = None  # what a charge has had reversed, before and after
    hold: HoldChange | None = None  # a hold placed, captured, released or expired
    # Escrow (``domain.slices``): slices refilled from the lots, or one recalled into them,
    # or (``spend``) a consume written on its slice alone, the account item untouched.
    slice_moves: tuple[SliceMove, ...] = ()
    returns: tuple[Draw, ...] = ()  # credits a recall puts back into lots still in the store
    spend: bool = False
    disputed: tuple[str, ...] | None = None  # the lots under an open dispute afterwards; None: as before
    spill: Spill | None = None  # the outbox moved to an item of its own (``domain.outbox``)
    clawing: tuple[Claim, ...] | None = None  # the claims afterwards (``domain.claims``); None: as before
    unspilled: tuple[str, ...] = ()  # spills published: their items deleted

    @property
    def lot_changes(self) -> int:
        flags = len(self.warned) + len(self.frozen) + len(self.unfrozen)
        return len(self.draws) + len(self.transfers) + len(self.expirations) + flags

    @property
    def transaction_items(self) -> int:
        """The items one transaction writes for this mutation: the account, the idempotency
        records, the entries, the new lots still holding credits, the payment, each lot
        changed, the intent (written, rewritten or deleted), slices, and spills."""
        puts = len(self.records) + len(self.entries) + sum(1 for lot in self.new_lots if lot.remaining > 0)
        payment = int(self.payment_reference is not None and bool(self.entries))
        payment += int(self.reversal is not None) + int(self.hold is not None)
        intent = int(self.account.intent is not None or self.intent_after is not None)
        slices = len(self.slice_moves) + len(self.returns) + int(self.spill is not None) + len(self.unspilled)
        return int(not self.spend) + puts + payment + self.lot_changes + intent + slices

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
        if self.spend:  # the slice alone: the account item is not written
            return with_slices(self.account, self.slice_moves, recorded=False)
        amounts = [(entry.kind, entry.amount) for entry in self.entries]
        amount = sum(value for _, value in amounts)
        drawn: dict[str, int] = {}
        for draw in self.draws + self.transfers + self.expirations:
            drawn[draw.lot_id] = drawn.get(draw.lot_id, 0) + draw.amount
        for back in self.returns:
            drawn[back.lot_id] = drawn.get(back.lot_id, 0) - back.amount
        escrowed, folded = escrow_change(self.account, self.slice_moves)
        lots = tuple(
            replace(
                lot,
                remaining=lot.remaining - drawn.get(lot.lot_id, 0),
                warned=lot.warned or lot.lot_id in self.warned,
                frozen=(lot.frozen or lot.lot_id in self.frozen) and lot.lot_id not in self.unfrozen,
            )
            for lot in self.account.lots
        )
        return replace(
            with_slices(self.account, self.slice_moves),
            lots=tuple(lot for lot in lots + self.new_lots if lot.remaining > 0),
            periods=with_periods(self.account.periods, self.new_lots),
            intent=self.intent_after,
            version=self.account.version + 1,
            seq=self.entries[-1].seq if self.entries else self.account.seq,
            balance=self.account.balance + amount - escrowed - folded,
            granted=self.account.granted + sum(value for kind, value in amounts if kind in GRANTING_KINDS),
            adjusted=self.account.adjusted + sum(value for kind, value in amounts if kind == "adjustment"),
            voided=self.account.voided - sum(value for kind, value in amounts if kind == "void"),
            reversed=self.account.reversed + sum(value for kind, value in amounts if kind == "reversal"),
            consumed=self.account.consumed + folded - sum(v for kind, v in amounts if kind in SPENDING_KINDS),
            expired=self.account.expired - sum(value for kind, value in amounts if kind == "expire"),
            clawed_back=self.account.clawed_back - sum(value for kind, value in amounts if kind in CLAWING_KINDS),
            arrears=self.account.arrears + self.arrears_change,
            holds=with_hold(self.account.holds, self.hold),
            disputed=self.account.disputed if self.disputed is None else self.disputed,
            clawing=self.account.clawing if self.clawing is None else self.clawing,
            pending_events=self.account.pending_events if self.pending_events is None else self.pending_events,
            spilled=with_spills(self.account.spilled, self.spill, self.unspilled),
            unsettled=unsettled_after(self),
        )
