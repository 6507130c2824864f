"""Expiry rules: the write-off of a lot past its expiry (with its breakage), and the
warning before it."""

from __future__ import annotations

from fractions import Fraction

from tollbooth.domain import clock, ids
from tollbooth.domain.events import lot_event
from tollbooth.domain.ledger import (
    RESERVED_KEY_PREFIX,
    Account,
    Draw,
    LedgerEntry,
    Lot,
    Mutation,
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
    entry_id = ids.new_id("led", now)
    breakage = breakage_minor(lot, amount)
    details = {
        "lot_id": lot.lot_id,
        "source": lot.source,
        "package_id": lot.package_id,
        "plan_id": lot.plan_id,
        "expires_at": None if lot.expires_at is None else clock.to_iso(lot.expires_at),
        "price_minor": lot.price_minor,
        "currency": lot.currency,
        "lot_granted": lot.granted,
        "breakage_minor": breakage,
    }
    entry = LedgerEntry(
        entry_id=entry_id,
        seq=account.seq + 1,
        kind="expire",
        amount=-amount,
        balance_after=account.balance - amount,
        created_at=now,
        idempotency_key=EXPIRE_KEY_PREFIX + lot.lot_id,
        details=details,
    )
    event = lot_event(
        "credits.expired",
        account.account_id,
        lot,
        amount,
        now,
        entry_id=entry_id,
        breakage_minor=breakage,
        currency=lot.currency,
    )
    return Mutation(
        account,
        (entry,),
        expirations=(Draw(lot.lot_id, amount),),
        pending_events=(*account.pending_events, event),
    )


def warn(account: Account, lots: list[Lot], now: int) -> Mutation:
    events = tuple(lot_event("credits.expiring", account.account_id, lot, lot.remaining, now) for lot in lots)
    return Mutation(
        account, warned=tuple(lot.lot_id for lot in lots), pending_events=(*account.pending_events, *events)
    )
