"""Holds on a hot account's escrow slices: placed, captured and released without the
account item, as a slice's consume is (``domain.slices``).

- **Place** (``place_on_slice``): the hold takes its portions from what slice k holds, in
  burn-down order under the lots' restrictions; the slice records it among its open holds.
  Its id ends in ``s<k>`` (``ids.hold_id``): its item lives in the slice's partition. One
  transaction: the slice (guarded by its version), the hold (from nothing), the slice's
  ``hold`` entry and the idempotency record; nothing on the account's partition.
- **Capture** (``capture_on_slice``) takes from the hold's portions (a lot expired while
  held still pays), then, above the hold, from what the slice holds; the rest of the hold
  goes back to the slice. **Release** (``release_on_slice``, or the sweep at expiry) puts
  it all back into the slice.
- **On the account** (``OnAccount``): what the slice cannot do alone is written on the
  account, its slices recalled first (``domain.holds``, ``off_slice``): a capture beyond
  what the slice can pay (the whole account pays, then arrears), and a release whose
  credits include a lot the sweep has work on already (a warning or a write-off the slice
  cannot do).
- A hold stays on its slice until it closes: a recall leaves it there (``slices.recall``),
  and the account item records what the slice still holds and when its lots are next due.
- **Events** ride on the hold's own item (``Hold.pending_events``), which the expiry index
  keeps due until the sweep publishes them, as an account's outbox does.
- The open-hold cap (``max_open_holds``) counts the holds of the slice it is placed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tollbooth.domain import ids
from tollbooth.domain.allocation import allocate, draw_records, take_in_order
from tollbooth.domain.catalog import Catalog
from tollbooth.domain.errors import FeatureLocked, HoldCaptured, InsufficientCredits
from tollbooth.domain.events import hold_event
from tollbooth.domain.expiry import lot_due_at
from tollbooth.domain.hold_state import Hold, HoldChange, HoldRef, HoldStatus
from tollbooth.domain.holds import HoldRequest, about, admit, left_after, new_hold, reservation
from tollbooth.domain.ledger import Account, Draw, EntryKind, LedgerEntry, Lot, Mutation, Use
from tollbooth.domain.slice_state import Slice, SliceMove
from tollbooth.domain.slices import taken_from


class OnAccount(Exception):
    """The slice cannot make this change alone: it is written on the account."""


def place_on_slice(
    catalog: Catalog,
    view: Account,
    index: int,
    asked: HoldRequest,
    now: int,
    key: str,
    caller: Mapping[str, str],
    window: int,
) -> Mutation:
    """Reserve what ``asked`` needs from slice ``index`` (InsufficientCredits / FeatureLocked:
    the slice cannot, and is refilled; TooManyHolds / HoldTooLong: refused)."""
    held = view.slice(index)
    admit(catalog, asked, len(held.holds), f"escrow slice {index} of this busy account")
    amount, use, version = reservation(catalog, asked)
    draws = allocate(Account(view.account_id, lots=held.portions), amount, now, use)
    portions = _portions(held.portions, draws)
    hold = new_hold(ids.hold_id(now, index), amount, portions, now, asked, use, version)
    details = {**about(hold), "draws": draw_records(draws, held.portions), "caller": dict(caller)}
    entry = _entry(held, "hold", 0, now, key, details)
    dues = tuple(sorted({at for p in portions for at in _moments(p, window)}))
    ref = HoldRef(hold.hold_id, amount, hold.expires_at, dues)
    after = _advanced(held, entry, portions=taken_from(held.portions, draws), holds=(*held.holds, ref))
    placed = replace(hold, pending_events=(hold_event("hold.placed", view.account_id, entry, hold, now),))
    return Mutation(view, (entry,), slice_moves=(SliceMove(held, after),), hold=HoldChange(None, placed), spend=True)


def capture_on_slice(
    view: Account, hold: Hold, amount: int, now: int, key: str, caller: Mapping[str, str], window: int
) -> Mutation:
    """Charge ``amount`` for ``hold``'s job on its slice: from the hold, then from the slice
    (OnAccount: more than the slice can pay, or what goes back is due to the sweep)."""
    if hold.status == "captured":
        raise HoldCaptured(f"hold {hold.hold_id!r} was captured already; a hold is captured once")
    held = view.slice(_index(hold))
    open_ = hold.status == "open"
    taken, _ = take_in_order(list(hold.portions), amount) if open_ else ((), 0)
    from_hold = sum(draw.amount for draw in taken)
    back = left_after(hold.portions, taken) if open_ else ()
    _must_stay(held, back, now, window)
    use = Use(hold.feature or "", hold.licence)
    try:
        wanted = amount - from_hold
        extra = allocate(Account(view.account_id, lots=held.portions), wanted, now, use) if wanted else ()
    except (InsufficientCredits, FeatureLocked):
        raise OnAccount from None  # the whole account pays, then arrears
    details = {
        **about(hold),
        "captured": amount,
        "from_hold": from_hold,
        "draws": draw_records(taken, hold.portions) + draw_records(extra, held.portions),
        "unpaid": 0,
        "released": sum(p.remaining for p in back),
        "written_off": 0,
        "caller": dict(caller),
    }
    entry = _entry(held, "capture", -amount, now, key, details)
    portions = _merged(taken_from(held.portions, extra), back)
    after = _advanced(held, entry, portions=portions, holds=_without(held, hold), consumed=held.consumed + amount)
    event = hold_event("hold.captured", view.account_id, entry, hold, now)
    closed = replace(hold, status="captured", portions=(), captured=amount, closed_at=now)
    closed = replace(closed, pending_events=(*hold.pending_events, event))
    return Mutation(view, (entry,), slice_moves=(SliceMove(held, after),), hold=HoldChange(hold, closed), spend=True)


def release_on_slice(
    view: Account,
    hold: Hold,
    now: int,
    key: str | None,
    caller: Mapping[str, str],
    window: int,
    *,
    expired: bool = False,
) -> Mutation | None:
    """Put what ``hold`` holds back into its slice (None: released or expired already;
    HoldCaptured: its job was charged; OnAccount: its lots are due to the sweep)."""
    if hold.status == "captured":
        raise HoldCaptured(f"hold {hold.hold_id!r} was captured; there is nothing left to release")
    if hold.status != "open":
        return None
    held = view.slice(_index(hold))
    _must_stay(held, hold.portions, now, window)
    details = {**about(hold), "released": hold.held, "written_off": 0, "expired": expired, "caller": dict(caller)}
    entry = _entry(held, "release", 0, now, key, details)
    after = _advanced(held, entry, portions=_merged(held.portions, hold.portions), holds=_without(held, hold))
    kind = "hold.expired" if expired else "hold.released"
    event = hold_event(kind, view.account_id, entry, hold, now)
    status: HoldStatus = "expired" if expired else "released"
    closed = replace(hold, status=status, portions=(), closed_at=now, pending_events=(*hold.pending_events, event))
    return Mutation(view, (entry,), slice_moves=(SliceMove(held, after),), hold=HoldChange(hold, closed), spend=True)


def published(account_id: str, hold: Hold) -> Mutation:
    """The hold with its events published: its item alone, guarded by its status."""
    return Mutation(Account(account_id), hold=HoldChange(hold, replace(hold, pending_events=())), spend=True)


def _index(hold: Hold) -> int:
    index = ids.hold_slice(hold.hold_id)
    if index is None:
        raise ValueError(f"hold {hold.hold_id!r} was not placed on a slice")
    return index


def _moments(portion: Lot, window: int) -> tuple[int, ...]:
    """Every moment the sweep has work on a portion's lot: its warning and its write-off."""
    if portion.expires_at is None:
        return ()
    warning = (portion.expires_at - window,) if window > 0 and not portion.warned else ()
    return (*warning, portion.expires_at + portion.expiry_grace)


def _must_stay(held: Slice, portions: tuple[Lot, ...], now: int, window: int) -> None:
    """Credits going back to a slice must not be due to the sweep yet (the account item says
    when the slice is next due, and only a write of the account can move that sooner), nor
    belong to a lot under dispute or claimed (they go back into their lots, frozen, or to the claim)."""
    if any((at := lot_due_at(p, window)) is not None and at <= now for p in portions):
        raise OnAccount
    if any(p.lot_id in held.through_account for p in portions if p.remaining):
        raise OnAccount


def _entry(
    held: Slice, kind: EntryKind, amount: int, now: int, key: str | None, details: dict[str, Any]
) -> LedgerEntry:
    """The slice's next entry (its own stream; no balance_after, which only the whole knows)."""
    at = max(now, held.last_at)
    seq = held.seq + 1
    return LedgerEntry(ids.entry_id(at, seq, held.index), seq, kind, amount, None, at, key, details, held.index)


def _advanced(
    held: Slice, entry: LedgerEntry, portions: tuple[Lot, ...], holds: tuple[HoldRef, ...], consumed: int | None = None
) -> Slice:
    spent = held.consumed if consumed is None else consumed
    return replace(
        held,
        version=held.version + 1,
        seq=entry.seq,
        last_at=entry.created_at,
        portions=portions,
        holds=holds,
        consumed=spent,
    )


def _without(held: Slice, hold: Hold) -> tuple[HoldRef, ...]:
    return tuple(ref for ref in held.holds if ref.hold_id != hold.hold_id)


def _portions(portions: tuple[Lot, ...], draws: tuple[Draw, ...]) -> tuple[Lot, ...]:
    terms = {p.lot_id: p for p in portions}
    return tuple(replace(terms[d.lot_id], remaining=d.amount) for d in draws)


def _merged(portions: tuple[Lot, ...], back: tuple[Lot, ...]) -> tuple[Lot, ...]:
    """``portions`` with ``back`` added, each to its lot's portion (or as a new one)."""
    adding = {p.lot_id: p for p in back if p.remaining > 0}
    kept = [
        replace(p, remaining=p.remaining + adding.pop(p.lot_id).remaining) if p.lot_id in adding else p
        for p in portions
    ]
    return (*kept, *adding.values())
