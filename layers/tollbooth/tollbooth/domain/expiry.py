"""Expiry rules: when lots are due, the write-off of a lot past its expiry (with its
breakage), and the warning before it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from tollbooth.domain import clock
from tollbooth.domain.allocation import burn_down_order
from tollbooth.domain.events import lot_event
from tollbooth.domain.ledger import (
    RESERVED_KEY_PREFIX,
    Account,
    Draw,
    Expiry,
    LedgerEntry,
    Lot,
    Mutation,
    next_entry,
)
from tollbooth.domain.money import round_half_even

EXPIRE_KEY_PREFIX = f"{RESERVED_KEY_PREFIX}expire:"


def breakage_minor(lot: Lot, amount: int) -> int | None:
    """What the expired credits cost the buyer, in minor units (exact, then half-even)."""
    if lot.price_minor is None or lot.granted == 0:
        return None
    return round_half_even(Fraction(lot.price_minor * amount, lot.granted))


def write_off(account: Account, lot: Lot, now: int) -> Mutation:
    """The mutation that expires what is left in ``lot``, with its ledger entry and event."""
    amount = lot.remaining
    entry = next_entry(account, "expire", -amount, now, EXPIRE_KEY_PREFIX + lot.lot_id, expire_details(lot, amount))
    event = expired_event(account.account_id, entry, lot, now)
    return Mutation(
        account,
        (entry,),
        expirations=(Draw(lot.lot_id, amount),),
        pending_events=(*account.pending_events, event),
    )


def expire_details(lot: Lot, amount: int) -> dict[str, Any]:
    """What an ``expire`` entry records of ``amount`` credits of ``lot`` written off."""
    return {
        "lot_id": lot.lot_id,
        "source": lot.source,
        "package_id": lot.package_id,
        "plan_id": lot.plan_id,
        "expires_at": None if lot.expires_at is None else clock.to_iso(lot.expires_at),
        "price_minor": lot.price_minor,
        "currency": lot.currency,
        "lot_granted": lot.granted,
        "breakage_minor": breakage_minor(lot, amount),
    }


def expired_event(account_id: str, entry: LedgerEntry, lot: Lot, now: int, **extra: Any) -> dict[str, Any]:
    """``credits.expired`` for a committed ``expire`` entry of ``lot``."""
    details = entry.details
    return lot_event(
        "credits.expired",
        account_id,
        lot,
        -entry.amount,
        now,
        entry_id=entry.entry_id,
        breakage_minor=details["breakage_minor"],
        currency=lot.currency,
        **extra,
    )


def warn(account: Account, lots: list[Lot], now: int) -> Mutation:
    events = tuple(lot_event("credits.expiring", account.account_id, lot, lot.remaining, now) for lot in lots)
    return Mutation(
        account, warned=tuple(lot.lot_id for lot in lots), pending_events=(*account.pending_events, *events)
    )


def write_off_at(lot: Lot) -> int | None:
    """When the sweep writes a lot off: its expiry, plus any grace (never, for no expiry)."""
    return None if lot.expires_at is None else lot.expires_at + lot.expiry_grace


def due_for_expiry(account: Account, now: int) -> list[Lot]:
    """Lots with credits left whose write-off time has come, in burn-down order."""
    due = [lot for lot in account.lots if lot.remaining > 0 and (at := write_off_at(lot)) is not None and at <= now]
    return burn_down_order(due)


def due_for_warning(account: Account, now: int, window: int) -> list[Lot]:
    """Unwarned lots with spendable credits that expire within ``window`` ms."""
    if window <= 0:
        return []
    return burn_down_order(
        [
            lot
            for lot in account.lots
            if not lot.warned
            and lot.spendable_at(now)
            and lot.expires_at is not None
            and lot.expires_at - window <= now
        ]
    )


def lot_due_at(lot: Lot, window: int) -> int | None:
    """The next instant the sweep has work on a lot: its warning (``window`` ms before
    expiry, until it is warned) or its write-off; None for a lot that never expires."""
    if lot.remaining <= 0 or lot.expires_at is None:
        return None
    write_off = lot.expires_at + lot.expiry_grace
    return min(write_off, lot.expires_at - window) if window > 0 and not lot.warned else write_off


def next_due_at(account: Account, window: int) -> int | None:
    """The next instant the sweep has work on this account, or None when it never will.

    That is the earliest of: each lot's next moment (``lot_due_at``), the moment lots beyond
    the summary need the sweep, the soonest such moment of what escrow slices hold, the
    soonest expiry of an open hold, and, if
    events wait in the outbox or lot draws in an intent, right away (0)."""
    waiting = account.pending_events or account.spilled or account.intent is not None
    moments = [0] if waiting else []
    moments += [at for lot in account.lots if (at := lot_due_at(lot, window)) is not None]
    # Credits in escrow slices: the sweep recalls them when they need its work.
    moments += [escrow.due_at for escrow in account.escrow if escrow.due_at is not None]
    moments += [ref.expires_at for ref in account.holds]  # an open hold releases itself at its expiry
    if account.unsummarized is not None:
        moments.append(account.unsummarized)
    return min(moments, default=None)


@dataclass(frozen=True)
class ExpirySummary:
    """What the account item tells the sweep: the soonest-due live expiring lots, when the
    rest (if any) are next due, and when the account is next due at all."""

    lots: tuple[Lot, ...]
    unsummarized: int | None
    next_due_at: int | None


def expiry_summary(account: Account, indexing: ExpiryIndexing) -> ExpirySummary:
    """The ``indexing.summary_lots`` live expiring lots due soonest. From a full account the
    rest are known; from the sweep's view (which holds only the summary), what it knew of
    the rest is kept."""
    window = indexing.warning_window
    due = sorted(
        ((at, lot.lot_id, lot) for lot in account.lots if (at := lot_due_at(lot, window)) is not None),
        key=lambda row: (row[0], row[1]),
    )
    kept = tuple(lot for _, _, lot in due[: indexing.summary_lots])
    beyond = [at for at, _, _ in due[indexing.summary_lots :]]
    if account.unsummarized is not None:
        beyond.append(account.unsummarized)
    unsummarized = min(beyond, default=None)
    summarised = replace(account, lots=kept, unsummarized=unsummarized)
    return ExpirySummary(kept, unsummarized, next_due_at(summarised, window))


def expiring_within(account: Account, now: int, window: int) -> list[Expiry]:
    """Spendable credits that expire within ``window`` ms, summed per expiry instant."""
    totals: dict[int, int] = {}
    for lot in account.lots:
        if lot.spendable_at(now) and lot.expires_at is not None and lot.expires_at <= now + window:
            totals[lot.expires_at] = totals.get(lot.expires_at, 0) + lot.remaining
    return [Expiry(at, amount) for at, amount in sorted(totals.items())]


@dataclass(frozen=True)
class ExpiryIndexing:
    """How accounts are indexed for the sweep: the warning window (ms), the index's shard
    count, and how many of an account's live expiring lots its item summarises (the soonest
    due; the sweep reads the rest when their time comes). Six summaries of 100 to 125
    bytes keep the account item, which every consume rewrites, under 1 KB: one write unit
    step (2 in a transaction, and 1 more for its index entry) per KB."""

    warning_window: int = 7 * 86_400_000
    shards: int = 8
    summary_lots: int = 6
