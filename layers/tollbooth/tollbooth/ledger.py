"""Ledger rules: lots, burn-down order, allocation and the mutations they produce.

Pure Python over plain dataclasses. The repository persists a ``Mutation`` in one
DynamoDB transaction guarded by the account's version; nothing here does I/O.

Invariants (checked by the tests):
* every lot has 0 <= remaining <= granted;
* account.balance == sum(lot.remaining) == granted - consumed - expired;
* each mutation bumps account.version by one and appends ledger entry #version.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tollbooth.errors import InsufficientCredits

LotSource = Literal["purchase", "bonus", "promotional", "adjustment"]
EntryKind = Literal["purchase", "grant", "consume", "expire"]

# Lower numbers are spent first when expiry ties (Stripe-style priority).
DEFAULT_PRIORITY: dict[str, int] = {"promotional": 10, "bonus": 20, "adjustment": 30, "purchase": 50}


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

    def spendable_at(self, now: int) -> bool:
        # A lot is dead at its expires_at instant, whether or not a sweep has run.
        return self.remaining > 0 and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class Account:
    account_id: str
    version: int = 0
    balance: int = 0
    granted: int = 0
    consumed: int = 0
    expired: int = 0
    lots: tuple[Lot, ...] = ()

    def available_at(self, now: int) -> int:
        return sum(lot.remaining for lot in self.lots if lot.spendable_at(now))


@dataclass(frozen=True)
class Draw:
    lot_id: str
    amount: int


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


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    fingerprint: str
    status_code: int
    body: dict[str, Any]
    seq: int


@dataclass(frozen=True)
class Mutation:
    """Everything one request changes, written all-or-nothing."""

    account: Account  # the state it was computed from; its version is the guard
    entry: LedgerEntry
    idempotency: IdempotencyRecord
    draws: tuple[Draw, ...] = ()
    new_lots: tuple[Lot, ...] = ()
    payment_reference: str | None = None

    @property
    def account_after(self) -> Account:
        """The exact state once written: the version guard rules out any change in between."""
        amount = self.entry.amount
        drawn = {draw.lot_id: draw.amount for draw in self.draws}
        lots = tuple(
            replace(lot, remaining=lot.remaining - drawn[lot.lot_id]) if lot.lot_id in drawn else lot
            for lot in self.account.lots
        )
        return replace(
            self.account,
            lots=lots + self.new_lots,
            version=self.entry.seq,
            balance=self.account.balance + amount,
            granted=self.account.granted + (amount if amount > 0 else 0),
            consumed=self.account.consumed + (-amount if self.entry.kind == "consume" else 0),
            expired=self.account.expired + (-amount if self.entry.kind == "expire" else 0),
        )


def burn_down_order(lots: tuple[Lot, ...] | list[Lot]) -> list[Lot]:
    """Earliest expiry first, never-expiring last; ties by priority, then age."""
    return sorted(
        lots,
        key=lambda lot: (lot.expires_at is None, lot.expires_at or 0, lot.priority, lot.created_at, lot.lot_id),
    )


def allocate(account: Account, amount: int, now: int) -> tuple[Draw, ...]:
    """Pick the lots that pay ``amount`` in burn-down order, or raise InsufficientCredits."""
    available = account.available_at(now)
    if amount > available:
        raise InsufficientCredits("not enough credits for this request", required=amount, available=available)
    draws = []
    left = amount
    for lot in burn_down_order([lot for lot in account.lots if lot.spendable_at(now)]):
        if left == 0:
            break
        take = min(lot.remaining, left)
        draws.append(Draw(lot.lot_id, take))
        left -= take
    return tuple(draws)


def next_expiry(account: Account, now: int) -> Expiry | None:
    """The earliest future expiry instant and the total that expires then."""
    upcoming = [lot for lot in account.lots if lot.spendable_at(now) and lot.expires_at is not None]
    if not upcoming:
        return None
    first = min(lot.expires_at for lot in upcoming if lot.expires_at is not None)
    return Expiry(first, sum(lot.remaining for lot in upcoming if lot.expires_at == first))
