"""Holds: credits reserved before a long job, captured when it ends, the rest released.

- **Place** (``place_mutation``): the job's price (a feature and quantity, priced by the
  catalog in force) or bare credits leave the spendable lots at once, in burn-down order
  and under the lots' licence and feature restrictions (402 when they do not cover it).
  They become portions of the hold (copies of their lots' terms), an ``hold`` entry of 0:
  the balance still counts them, ``available`` does not.
- **Capture** (``capture_mutation``) charges what the job used, once: from the hold's
  portions first (a lot that expired while held still pays), then what is left goes back.
  More than the hold is charged from the available credits, and what they cannot pay
  becomes arrears, as usage does: the work was done. A capture after the hold was
  released or expired charges the same way, and is the hold's one capture.
- **Release** (``release_mutation``), by the caller or by the sweep at expiry, puts the
  portions back into their lots; what belongs to a lot expired since is written off.

A hold's item records its status, and every change of it is guarded by the status it
leaves, besides the account's version: capture, release and expiry never both win.

On a busy account a hold is placed, captured and released on an escrow slice
(``domain.slice_holds``). Outside one, it is written on the account's own lots, its slices
left alone: placing recalls only the slices the lots need (PoolNeeded) and refuses only
what the whole account cannot pay; a capture beyond the hold, which may run into arrears,
pools them first. A slice's hold closed here (``off_slice``) leaves its slice in the same
transaction. Entries written while slices hold credits have no ``balance_after``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from tollbooth.domain import clock, ids
from tollbooth.domain.allocation import allocate, draw_records, draw_what_lots_can, take_in_order
from tollbooth.domain.catalog import Catalog
from tollbooth.domain.claim_state import claim_entries_at_most, through_account
from tollbooth.domain.debits import consume
from tollbooth.domain.errors import HoldCaptured, HoldTooLong, InvalidRequest, TooManyHolds
from tollbooth.domain.events import hold_event, overdrawn_event
from tollbooth.domain.hold_state import Hold, HoldChange, HoldStatus
from tollbooth.domain.ledger import Account, Draw, Lot, Mutation, Use, next_entry
from tollbooth.domain.portions import give_back, with_taken, write_offs
from tollbooth.domain.pricing import price
from tollbooth.domain.slice_state import SliceMove
from tollbooth.domain.slices import PoolNeeded, holding, in_escrow, lots_must_cover, on_own_side


@dataclass(frozen=True)
class HoldRequest:
    """What to reserve: a feature's price for ``quantity`` (and dimensions), or ``credits``."""

    feature: str | None
    quantity: int | None
    dimensions: dict[str, str]
    credits: int | None
    expires_in_seconds: int


# What a release writes besides its lot changes (which an intent may carry) and its
# write-off entries: the account, its entry, the hold, the idempotency record, an intent
# item, and the hold's slice (and an entry per kind of claim, ``domain.claims``). Expired
# portions are written off at once while their entries fit in one transaction with these;
# beyond that the sweep writes them off.
RELEASE_OVERHEAD = 6


def place_mutation(
    catalog: Catalog,
    account: Account,
    asked: HoldRequest,
    now: int,
    key: str,
    caller: Mapping[str, str],
) -> Mutation:
    """Reserve what ``asked`` needs, or InsufficientCredits / FeatureLocked / TooManyHolds.
    A hold of more lots than one transaction holds takes them through an intent, and gives
    them back the same way (``domain.intents``)."""
    admit(catalog, asked, len(account.holds))
    amount, use, version = reservation(catalog, asked)
    if account.escrow:
        lots_must_cover(account, 0, amount, now, use)
    draws = allocate(account, amount, now, use)
    terms = {lot.lot_id: lot for lot in account.lots}
    portions = tuple(replace(terms[d.lot_id], remaining=d.amount) for d in draws)
    hold = new_hold(ids.hold_id(now), amount, portions, now, asked, use, version)
    details = {**about(hold), "draws": draw_records(draws, account.lots), "caller": dict(caller)}
    entry = next_entry(account, "hold", 0, now, key, details)
    event = hold_event("hold.placed", account.account_id, entry, hold, now)
    change = HoldChange(None, hold)
    placed = Mutation(account, (entry,), draws=draws, hold=change, pending_events=(*account.pending_events, event))
    return on_own_side(placed)


def admit(catalog: Catalog, asked: HoldRequest, open_holds: int, holder: str = "the account") -> None:
    """HoldTooLong / TooManyHolds, by the catalog's caps, when ``asked`` may not be placed
    beside ``open_holds`` open ones of ``holder``'s."""
    if asked.expires_in_seconds > catalog.max_hold_seconds:
        raise HoldTooLong(
            f"a hold may last at most {catalog.max_hold_seconds} seconds (max_hold_seconds in catalog "
            f"{catalog.version})"
        )
    if open_holds >= catalog.max_open_holds:
        raise TooManyHolds(
            f"{holder} has {open_holds} open holds, the most catalog {catalog.version} allows; "
            "capture or release one first"
        )


def new_hold(
    hold_id: str, amount: int, portions: tuple[Lot, ...], now: int, asked: HoldRequest, use: Use, version: str | None
) -> Hold:
    return Hold(
        hold_id,
        "open",
        amount,
        portions,
        now,
        now + asked.expires_in_seconds * 1000,
        use.licence,
        asked.feature,
        asked.quantity,
        dict(asked.dimensions),
        version,
    )


def reservation(catalog: Catalog, asked: HoldRequest) -> tuple[int, Use, str | None]:
    """What the hold reserves, what it may be paid with, and the catalog version that priced it."""
    if asked.feature is not None and asked.quantity is not None:
        charge, use = consume(catalog, asked.feature, asked.quantity, asked.dimensions)
        return charge.amount, use, charge.catalog_version
    if asked.credits is None:
        raise InvalidRequest("a hold needs feature and quantity, or credits")
    # Bare credits: lots any feature may spend, under the default licence.
    return asked.credits, Use("", catalog.default_licence), None


def capture_amount(catalog: Catalog | None, hold: Hold, quantity: int | None, credits: int | None) -> int:
    """What a capture charges: ``credits``, or ``quantity`` priced as the hold was (by the
    catalog version in force when it was placed, ``catalog``)."""
    if credits is not None:
        return credits
    if quantity is None or hold.feature is None or catalog is None:
        raise InvalidRequest("capture a hold of bare credits by credits; a feature's hold by quantity or credits")
    return price(catalog, hold.feature, quantity, hold.dimensions).amount


def capture_mutation(
    account: Account, hold: Hold, amount: int, now: int, key: str, caller: Mapping[str, str], max_items: int
) -> Mutation:
    """Charge ``amount`` for the job ``hold`` reserved for, once (HoldCaptured after that)."""
    if hold.status == "captured":
        raise HoldCaptured(f"hold {hold.hold_id!r} was captured already; a hold is captured once")
    if in_escrow(account) and (hold.status != "open" or amount > hold.held):
        raise PoolNeeded(None)  # beyond the hold: the whole account pays, then arrears
    moves = off_slice(account, hold, now)
    taken, _ = take_in_order(list(hold.portions), amount) if hold.status == "open" else ((), 0)
    from_hold = sum(draw.amount for draw in taken)
    leftover = left_after(hold.portions, taken) if hold.status == "open" else ()
    room = max_items - RELEASE_OVERHEAD - claim_entries_at_most(account.clawing)
    back = give_back(account, leftover, now, write_off_at_most=room)
    use = Use(hold.feature or "", hold.licence)
    extra, unpaid = draw_what_lots_can(account, amount - from_hold, now, use)
    details = {
        **about(hold),
        "captured": amount,
        "from_hold": from_hold,
        "draws": draw_records(taken, hold.portions) + draw_records(extra, account.lots),
        "unpaid": unpaid,
        "released": back.returned,
        "written_off": back.written_off,
        "caller": dict(caller),
    }
    entry = next_entry(account, "capture", -amount, now, key, details)
    written_off, expired = write_offs(account, entry, back.expired, now, "capture")
    after = replace(hold, status="captured", portions=(), captured=amount, closed_at=now, pending_events=())
    events = [*hold.pending_events, hold_event("hold.captured", account.account_id, entry, hold, now), *expired]
    if account.arrears == 0 and unpaid:
        events.append(overdrawn_event(account.account_id, entry, unpaid, now))
    captured = Mutation(
        account,
        (entry, *written_off),
        draws=extra,
        returns=back.returns,
        new_lots=back.remade,
        arrears_change=unpaid,
        hold=HoldChange(hold, after),
        pending_events=(*account.pending_events, *events),
        slice_moves=moves,
    )
    return on_own_side(with_taken(captured, back, now))


def release_mutation(
    account: Account,
    hold: Hold,
    now: int,
    key: str | None,
    caller: Mapping[str, str],
    max_items: int,
    *,
    expired: bool = False,
) -> Mutation | None:
    """Put what ``hold`` holds back into its lots (None: it is released or expired already;
    HoldCaptured: its job was charged). ``expired``: the sweep releases it at its expiry."""
    if hold.status == "captured":
        raise HoldCaptured(f"hold {hold.hold_id!r} was captured; there is nothing left to release")
    if hold.status != "open":
        return None
    moves = off_slice(account, hold, now)
    room = max_items - RELEASE_OVERHEAD - claim_entries_at_most(account.clawing)
    back = give_back(account, hold.portions, now, write_off_at_most=room)
    details = {
        **about(hold),
        "released": back.returned,
        "written_off": back.written_off,
        "expired": expired,
        "caller": dict(caller),
    }
    entry = next_entry(account, "release", 0, now, key, details)
    written_off, events = write_offs(account, entry, back.expired, now, "release")
    kind = "hold.expired" if expired else "hold.released"
    status: HoldStatus = "expired" if expired else "released"
    after = replace(hold, status=status, portions=(), closed_at=now, pending_events=())
    freed = (*hold.pending_events, hold_event(kind, account.account_id, entry, hold, now), *events)
    released = Mutation(
        account,
        (entry, *written_off),
        returns=back.returns,
        new_lots=back.remade,
        hold=HoldChange(hold, after),
        pending_events=(*account.pending_events, *freed),
        slice_moves=moves,
    )
    return on_own_side(with_taken(released, back, now))


def off_slice(account: Account, hold: Hold, now: int) -> tuple[SliceMove, ...]:
    """An open hold of a slice's (``domain.slice_holds``) closed on the account's own lots:
    its slice, recalled first, no longer holds it, and its credits are the account's again."""
    index = ids.hold_slice(hold.hold_id)
    if index is None or hold.status != "open":
        return ()
    held = next((s for s in account.slices if s.index == index), None)
    if held is None or not held.idle:
        raise PoolNeeded((index,))
    holds = tuple(r for r in held.holds if r.hold_id != hold.hold_id)
    lots = through_account(account.disputed, account.clawing)
    after = replace(held, version=held.version + 1, holds=holds, through_account=lots)
    return (SliceMove(held, after, holding(after, now)),)


def due_holds(account: Account, now: int) -> list[str]:
    """The open holds whose expiry has come, soonest first."""
    return [ref.hold_id for ref in sorted(account.holds, key=lambda r: r.expires_at) if ref.expires_at <= now]


def left_after(portions: tuple[Lot, ...], taken: tuple[Draw, ...]) -> tuple[Lot, ...]:
    spent = {draw.lot_id: draw.amount for draw in taken}
    return tuple(replace(p, remaining=p.remaining - spent.get(p.lot_id, 0)) for p in portions)


def about(hold: Hold) -> dict[str, Any]:
    """What every entry of a hold records of it."""
    return {
        "hold_id": hold.hold_id,
        "credits": hold.credits,
        "feature": hold.feature,
        "quantity": hold.quantity,
        "catalog_version": hold.catalog_version,
        "expires_at": clock.to_iso(hold.expires_at),
    }
