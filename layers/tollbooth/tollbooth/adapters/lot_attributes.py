"""How a lot is stored, spelled once for the DynamoDB adapter and its in-memory twin.

Each field of the domain's ``Lot`` is an attribute of the same name, except that
``licences``, ``features`` and ``unlocks`` are string sets (DynamoDB has neither empty sets
nor order: an empty one is left out, and they read back sorted), the flags
``priority_processing``, ``warned`` and ``expiry_grace`` are left out while false or 0,
and ``None`` is no attribute at all. The account item keeps a short summary of each live
expiring lot for the sweep (``SUMMARY``, a list), the latest period of each plan, and an intent's
owed draws go in an item of their own: both are spelled here too. So are an escrow
slice's portions (each a lot's attributes as JSON, sets as sorted lists) and what the
account item records of its slices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from tollbooth.domain.claim_state import Claim
from tollbooth.domain.hold_state import Hold, HoldRef, hold_record
from tollbooth.domain.ledger import Draw, Escrow, Intent, Lot, PlanPeriod, Slice
from tollbooth.domain.outbox_state import SpillRef

FIELDS = tuple(field.name for field in fields(Lot))
SETS = ("licences", "features", "unlocks")
FLAGS = ("priority_processing", "warned", "expiry_grace", "frozen")
NUMBERS = ("granted", "remaining", "created_at", "expires_at", "priority", "price_minor", "expiry_grace", "grant_seq")

# The summary of a lot on the account item: what the sweep needs to write it off or warn
# of it, reading one item per account. It is a list in this order, short of the trailing
# fields that hold their default (None, false, 0): every consume rewrites the account item,
# at 2 write units per started KB and its ExpiryIndex entry one more, so each lot's summary
# is kept to about 100 bytes (its named form took 210).
SUMMARY = (
    "lot_id",
    "source",
    "granted",
    "remaining",
    "created_at",
    "expires_at",
    "priority",
    "price_minor",
    "currency",
    "package_id",
    "plan_id",
    "warned",
    "expiry_grace",
)
SUMMARY_ALWAYS = 7  # lot_id to priority: never left out
SUMMARY_DEFAULTS = {"warned": False, "expiry_grace": 0}  # the rest: None
# The named form account items were written with before, still read.
NAMED_SUMMARY = {
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


def lot_attributes(lot: Lot) -> dict[str, Any]:
    """The lot's stored attributes; None where the item has no attribute."""
    stored: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(lot, name)
        if name in SETS:
            value = set(value) if value else None
        elif name in FLAGS:
            value = value or None
        stored[name] = value
    return stored


def lot_from_attributes(stored: Mapping[str, Any]) -> Lot:
    values: dict[str, Any] = {}
    for name in FIELDS:
        value = stored.get(name)
        if name in SETS and value is not None:
            value = tuple(sorted(value))
        elif name in NUMBERS and value is not None:
            value = int(value)
        values[name] = value
    values["unlocks"] = values["unlocks"] or ()
    values["priority_processing"] = bool(values["priority_processing"])
    values["warned"] = bool(values["warned"])
    values["frozen"] = bool(values["frozen"])
    values["expiry_grace"] = values["expiry_grace"] or 0
    return Lot(**values)


def lot_summary(lot: Lot) -> list[Any]:
    values = [getattr(lot, name) for name in SUMMARY]
    while len(values) > SUMMARY_ALWAYS and values[-1] == SUMMARY_DEFAULTS.get(SUMMARY[len(values) - 1]):
        values.pop()
    return values


def summaries_json(summaries: list[list[Any]]) -> str:
    """The summaries as stored: JSON without spaces after its separators."""
    return json.dumps(summaries, separators=(",", ":"))


def lots_summarised(lots: tuple[Lot, ...]) -> str | None:
    """The account item's ``expiring_lots`` as the twin stores it: the lots' summaries, or
    no attribute."""
    return summaries_json([lot_summary(lot) for lot in lots]) if lots else None


def lot_from_summary(summary: list[Any] | Mapping[str, Any]) -> Lot:
    if isinstance(summary, Mapping):
        return Lot(**{name: summary[short] for short, name in NAMED_SUMMARY.items()})
    given: dict[str, Any] = dict(zip(SUMMARY, summary, strict=False))
    values: dict[str, Any] = {name: given.get(name, SUMMARY_DEFAULTS.get(name)) for name in SUMMARY}
    return Lot(**values)


def periods_stored(periods: tuple[PlanPeriod, ...]) -> list[list[Any]] | None:
    """The account item's ``periods``: [[plan_id, granted_at, ends_at]], or no attribute."""
    return [[p.plan_id, p.granted_at, p.ends_at] for p in periods] or None


def periods_from_stored(stored: list[list[Any]] | None) -> tuple[PlanPeriod, ...]:
    return tuple(PlanPeriod(str(plan), int(start), int(end)) for plan, start, end in stored or [])


def intent_stored(intent: Intent) -> dict[str, Any]:
    """The intent item's attributes: the entry it finishes, the draws still owed, and the
    credits still going back into lots ([[lot_id, amount]]) or into lots made again."""
    return {
        "entry_id": intent.entry_id,
        "draws": [[draw.lot_id, draw.amount] for draw in intent.draws],
        "returns": [[back.lot_id, back.amount] for back in intent.returns] or None,
        "remade": portions_stored(intent.remade) or None,
    }


def intent_from_stored(stored: Mapping[str, Any]) -> Intent:
    draws = tuple(Draw(str(lot_id), int(amount)) for lot_id, amount in stored["draws"])
    returns = tuple(Draw(str(lot_id), int(amount)) for lot_id, amount in stored.get("returns") or [])
    remade = tuple(lot_from_attributes(p) for p in stored.get("remade") or [])
    return Intent(str(stored["entry_id"]), draws, returns, remade)


def escrow_stored(escrow: tuple[Escrow, ...]) -> list[list[Any]] | None:
    """The account item's ``escrow``: [[slice, credits received, due_at]], or no attribute."""
    return [[e.index, e.received, e.due_at] for e in escrow] or None


def escrow_from_stored(stored: list[list[Any]] | None) -> tuple[Escrow, ...]:
    return tuple(Escrow(int(i), int(n), None if at is None else int(at)) for i, n, at in stored or [])


def portions_stored(portions: tuple[Lot, ...]) -> list[dict[str, Any]]:
    """Portions of lots (a slice's, a hold's) as JSON-ready lot attributes."""
    return [
        {name: sorted(v) if isinstance(v, set) else v for name, v in lot_attributes(p).items() if v is not None}
        for p in portions
    ]


def slice_stored(held: Slice) -> dict[str, Any]:
    """A slice item's attributes (its portions as JSON-ready lot attributes)."""
    return {
        "index": held.index,
        "version": held.version,
        "portions": portions_stored(held.portions),
        "consumed": held.consumed,
        "seq": held.seq,
        "last_at": held.last_at,
        "holds": hold_refs_stored(held.holds),
        "through_account": list(held.through_account) or None,
    }


def slice_from_stored(stored: Mapping[str, Any]) -> Slice:
    portions = tuple(lot_from_attributes(p) for p in stored.get("portions") or [])
    numbers = {name: int(stored.get(name) or 0) for name in ("version", "consumed", "seq", "last_at")}
    holds, lots = hold_refs_from_stored(stored.get("holds")), tuple(stored.get("through_account") or ())
    return Slice(int(stored["index"]), portions=portions, holds=holds, through_account=lots, **numbers)


def hold_stored(hold: Hold) -> dict[str, Any]:
    """A hold item's attributes: its record, and its portions as a slice's are."""
    events = list(hold.pending_events) or None
    return {
        "hold_id": hold.hold_id,
        **hold_record(hold),
        "portions": portions_stored(hold.portions),
        "pending_events": events,
    }


def hold_from_stored(stored: Mapping[str, Any]) -> Hold:
    numbers = ("credits", "placed_at", "expires_at", "quantity", "captured", "closed_at")
    values = {name: None if stored.get(name) is None else int(stored[name]) for name in numbers}
    return Hold(
        hold_id=str(stored["hold_id"]),
        status=stored["status"],
        portions=tuple(lot_from_attributes(p) for p in stored.get("portions") or []),
        licence=str(stored["licence"]),
        feature=stored.get("feature"),
        dimensions=dict(stored.get("dimensions") or {}),
        catalog_version=stored.get("catalog_version"),
        credits=int(values["credits"] or 0),
        placed_at=int(values["placed_at"] or 0),
        expires_at=int(values["expires_at"] or 0),
        quantity=values["quantity"],
        captured=int(values["captured"] or 0),
        closed_at=values["closed_at"],
        pending_events=tuple(stored.get("pending_events") or ()),
    )


def spills_stored(refs: tuple[SpillRef, ...]) -> list[list[Any]] | None:
    """The account item's ``spilled``: [[key, events]] of its spills not yet published."""
    return [[ref.key, ref.events] for ref in refs] or None


def spills_from_stored(stored: list[list[Any]] | None) -> tuple[SpillRef, ...]:
    return tuple(SpillRef(str(key), int(events)) for key, events in stored or [])


def hold_refs_stored(refs: tuple[HoldRef, ...]) -> list[list[Any]] | None:
    """An account's or a slice's ``holds``: [[hold_id, credits, expires_at]] of its open
    holds, a slice's with [its lots' due moments]."""
    return [[ref.hold_id, ref.credits, ref.expires_at, *([list(ref.dues)] if ref.dues else [])] for ref in refs] or None


def claims_stored(claims: tuple[Claim, ...]) -> list[list[Any]] | None:
    """The account item's ``clawing``: [[lot_id, owed, kind, expires_at]], or no attribute."""
    return [[c.lot_id, c.owed, c.kind, c.expires_at] for c in claims] or None


def claims_from_stored(stored: list[list[Any]] | None) -> tuple[Claim, ...]:
    return tuple(
        Claim(str(lot_id), int(owed), kind, None if at is None else int(at)) for lot_id, owed, kind, at in stored or []
    )


def hold_refs_from_stored(stored: list[list[Any]] | None) -> tuple[HoldRef, ...]:
    return tuple(
        HoldRef(str(ref[0]), int(ref[1]), int(ref[2]), tuple(int(at) for at in (ref[3] if len(ref) > 3 else ())))
        for ref in stored or []
    )


def unsettled_stored(unsettled: tuple[tuple[str, int], ...]) -> list[list[Any]] | None:
    """The account item's ``unsettled`` (``domain.unsettled``): [[lot_id, credits]], or no attribute."""
    return [[lot_id, credits] for lot_id, credits in unsettled] or None


def unsettled_from_stored(stored: list[list[Any]] | None) -> tuple[tuple[str, int], ...]:
    return tuple((str(lot_id), int(credits)) for lot_id, credits in stored or [])
