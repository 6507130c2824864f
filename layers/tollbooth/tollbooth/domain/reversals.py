"""Reversals: a charge given back, for a failed generation or one usage record.

A reversal names a charge: a ``consume`` entry, or one record of a ``usage`` entry by its
``event_id``. It gives back at most what the charge took, counting every reversal of it
before: their total is an item of its own that guards the write, as a payment's refunded
total does. A reversal is not a charge, so it cannot itself be reversed.

What it gives back undoes the charge from its end, cumulatively, so that two partial
reversals give back exactly what one whole one does:

1. what the charge left unpaid, first: it reduces the arrears it added, and never mints
   credits. What of it later credits have since paid off was paid with those credits, so
   that much comes back as credits (a lot of source ``adjustment``, with no expiry);
2. then its draws, the last lot drawn first, each back into the lot it came from with that
   lot's terms and expiry: into the lot while it still holds credits, or into the lot made
   again from the terms its granting entry recorded (``Lot.grant_seq``);
3. credits whose lot has expired since are written off at once, by an ``expire`` entry of
   their own beside the ``reversal``, with their breakage, as the sweep would have.

The ``reversal`` entry adds what it gives back to the balance (the identity's ``reversed``
term), and any write-off takes the expired part out again (``expired``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from tollbooth.domain import ids
from tollbooth.domain.claim_state import claim_entries_at_most
from tollbooth.domain.errors import NotReversible, ReversalTooLarge
from tollbooth.domain.events import reversed_event
from tollbooth.domain.grants import lot_terms
from tollbooth.domain.ledger import (
    DEFAULT_PRIORITY,
    Account,
    ChargeReversal,
    LedgerEntry,
    Lot,
    Mutation,
    next_entry,
)
from tollbooth.domain.portions import give_back, with_taken, write_offs


@dataclass(frozen=True)
class ChargedDraw:
    lot_id: str
    amount: int
    grant_seq: int | None  # the entry that recorded the lot's terms (None: before they were kept)


@dataclass(frozen=True)
class Charged:
    """A charge as its entry recorded it: what it took, what it left unpaid, the lots it drew."""

    entry_id: str
    event_id: str | None  # the usage record's; None for a consume
    feature: str | None
    charged: int
    unpaid: int
    draws: tuple[ChargedDraw, ...]

    @property
    def key(self) -> str:
        return self.entry_id if self.event_id is None else f"{self.entry_id}#{self.event_id}"


@dataclass(frozen=True)
class ReversalRequest:
    entry_id: str
    event_id: str | None
    credits: int | None  # None: all that is left to reverse
    reason: str
    actor: str


def charged_by(entry: LedgerEntry, event_id: str | None) -> Charged:
    """The charge ``entry`` made (of usage record ``event_id``), or NotReversible."""
    if entry.kind == "reversal":
        raise NotReversible("a reversal cannot itself be reversed")
    if entry.kind == "consume" and event_id is None:
        details = entry.details
        return Charged(entry.entry_id, None, details.get("feature"), -entry.amount, 0, _draws(details["draws"]))
    if entry.kind == "consume":
        raise NotReversible("event_id names a usage record; a consume entry is reversed as a whole charge")
    if entry.kind != "usage":
        raise NotReversible(f"only consume and usage entries are charges; entry {entry.entry_id!r} is {entry.kind}")
    if event_id is None:
        raise NotReversible("a usage entry charges several records: name the one to reverse by its event_id")
    records = entry.details.get("records", [])
    line = next((record for record in records if record["event_id"] == event_id), None)
    if line is None:
        raise NotReversible(f"usage entry {entry.entry_id!r} charged no record {event_id!r}")
    entry_draws = entry.details["draws"]
    if "drew" in line:
        draws = [{**entry_draws[index], "amount": amount} for index, amount in line["drew"]]
    elif len(records) == 1:  # recorded before each record kept its draws: the entry's are its own
        draws = entry_draws
    else:
        raise NotReversible("the entry was recorded before each usage record kept its lots: use an adjustment")
    return Charged(entry.entry_id, event_id, line["feature"], line["charged"], line.get("unpaid", 0), _draws(draws))


def _draws(stored: list[dict[str, Any]]) -> tuple[ChargedDraw, ...]:
    return tuple(ChargedDraw(d["lot_id"], int(d["amount"]), d.get("grant_seq")) for d in stored)


def undone(charged: Charged, before: int, amount: int) -> tuple[int, list[tuple[ChargedDraw, int]]]:
    """What reversing ``amount`` more, once ``before`` has been, undoes: of the unpaid part,
    and of each draw (the last drawn first)."""
    parts: list[tuple[ChargedDraw | None, int]] = [(None, charged.unpaid)]
    parts += [(draw, draw.amount) for draw in reversed(charged.draws)]
    start, end, position = before, before + amount, 0
    unpaid, draws = 0, []
    for draw, size in parts:
        take = max(0, min(end, position + size) - max(start, position))
        position += size
        if take and draw is None:
            unpaid = take
        elif take and draw is not None:
            draws.append((draw, take))
    return unpaid, draws


def _portions(account: Account, draws: list[tuple[ChargedDraw, int]], terms: Mapping[str, Lot]) -> tuple[Lot, ...]:
    """Each draw undone as a portion of its lot (its terms, holding what goes back)."""
    live = {lot.lot_id: lot for lot in account.lots}
    portions = []
    for draw, amount in draws:
        lot = live.get(draw.lot_id) or terms.get(draw.lot_id)
        if lot is None:
            raise NotReversible(f"lot {draw.lot_id!r} has left the account, and its terms were not recorded")
        portions.append(replace(lot, remaining=amount, grant_seq=draw.grant_seq or lot.grant_seq))
    return tuple(portions)


# What a reversal writes besides its lot changes (which an intent may carry) and its
# write-off entries: the account, its entry, its idempotency record, the charge's record
# (what it has had reversed), a lot for arrears already paid, and an intent item (and an
# entry per kind of claim, ``domain.claims``).
REVERSAL_OVERHEAD = 6


def reversal_mutation(
    account: Account,
    charged: Charged,
    before: int,
    asked: ReversalRequest,
    terms: Mapping[str, Lot],
    now: int,
    key: str,
    caller: Mapping[str, str],
    *,
    max_items: int | None = None,
) -> Mutation:
    """Give back ``asked.credits`` of the charge (all that is left: None), as one ``reversal``
    entry and an ``expire`` entry per lot expired since; ``terms``: the lots that have left
    the store, as their granting entries recorded them. When those entries would not fit
    in one transaction of ``max_items``, the expired credits go back into their lots too,
    and the sweep writes them off."""
    left = charged.charged - before
    amount = left if asked.credits is None else asked.credits
    if left <= 0 or not 0 < amount <= left:
        raise ReversalTooLarge(
            f"the charge has {left} millicredits left to reverse; asked for {amount}",
            charged=charged.charged,
            reversed=before,
        )
    unpaid, draws = undone(charged, before, amount)
    reduced = min(unpaid, account.arrears)
    room = None if max_items is None else max_items - REVERSAL_OVERHEAD - claim_entries_at_most(account.clawing)
    portions = _portions(account, draws, terms)
    back = give_back(account, portions, now, write_off_at_most=room, arrears=account.arrears - reduced)
    settled = _settled_lot(unpaid - reduced, account.seq + 1, asked.reason, now)
    details = {
        "charge_entry_id": charged.entry_id,
        "event_id": charged.event_id,
        "feature": charged.feature,
        "charged": charged.charged,
        "reversed_total": before + amount,
        "arrears_reduced": reduced,
        "draws": [{"lot_id": d.lot_id, "amount": d.amount} for d in back.returns]
        + [{"lot_id": lot.lot_id, "amount": lot.remaining} for lot in back.remade + settled],
        "written_off": back.written_off,
        "lots": [lot_terms(lot) for lot in settled],
        "reason": asked.reason,
        "actor": asked.actor,
        "caller": dict(caller),
    }
    entry = next_entry(account, "reversal", amount, now, key, details)
    written_off, expired_events = write_offs(account, entry, back.expired, now, "reversal")
    entries = (entry, *written_off)
    events = (reversed_event(account.account_id, entry, now), *expired_events)
    reversal = Mutation(
        account,
        entries,
        returns=back.returns,
        new_lots=back.remade + settled,
        arrears_change=-reduced,
        reversal=ChargeReversal(charged.key, before, before + amount),
        pending_events=(*account.pending_events, *events),
    )
    return with_taken(reversal, back, now)


def _settled_lot(credits: int, seq: int, reason: str, now: int) -> tuple[Lot, ...]:
    """Credits for arrears that later credits already paid: a lot with no expiry."""
    if credits <= 0:
        return ()
    lot_id = ids.new_id("lot", now)
    priority = DEFAULT_PRIORITY["adjustment"]
    return (Lot(lot_id, "adjustment", credits, credits, now, priority=priority, reason=reason, grant_seq=seq),)
