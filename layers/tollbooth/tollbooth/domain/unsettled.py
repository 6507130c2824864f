"""Unsettled credits: spent from a lot whose stored state is not yet written.

Every change of an account writes the account item (its version is the guard). Writing a
draw on the lot's item as well costs that item too: 2 write units a lot in a transaction,
most of a consume's bill. So the store writes what a change draws from a lot on the
account item instead (``unsettled``: ``[[lot_id, credits]]``, oldest first), and the
lot's item keeps the credits it had. Reading the account takes them off again, so a lot
reads exactly as if its item had been written, and a lot whose item holds only unsettled
credits has left the account. A consume writes the account item, its entry and its
idempotency record, however many lots it draws.

A lot's unsettled credits are settled (taken off its item, or the item deleted with its
last credit) whenever its item is written anyway (a transfer or write-off of it, or the
lot made again by a recall), and, oldest first, whenever more than ``LIMIT`` lots have
some: the account item must stay under 1 KB, the unit a write is billed by. With a limit
of 0 every draw is written on its lot, as a store without this would.

Guards: a lot's item changed here loses what the change moves and its unsettled credits
together, guarded by holding both (exactly both, where the item is deleted), so the guard
on what the lot really holds is the one it always was. A draw kept on the account item is
guarded by the account's version alone, as every change of the account is.

A rule of how an account is stored, kept with the ledger's rules because the state a
mutation leaves (``Mutation.account_after``, which the write loop, usage batches and the
sweep carry on from) includes it; both stores apply the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the ledger's Mutation asks this module for its unsettled credits
    from tollbooth.domain.ledger import Draw, Lot, Mutation

LIMIT = 2  # lots with unsettled credits: about 40 bytes each on the account item

Unsettled = tuple[tuple[str, int], ...]
Guard = Literal["draw", "transfer", "expire"]


@dataclass(frozen=True)
class LotWrite:
    """One change of a lot's item: the credits its ``remaining`` loses (its unsettled ones
    included), and when: ``draw`` from an unexpired lot, ``transfer`` whatever its expiry,
    ``expire`` once it has expired."""

    lot_id: str
    guard: Guard
    amount: int
    deletes: bool  # the lot's last credit: the item goes, guarded by exactly ``amount``


@dataclass(frozen=True)
class Settlement:
    writes: tuple[LotWrite, ...]
    # New lots (made again by a recall) whose items still stand, holding unsettled credits
    # only: put over them, their unsettled credits gone with the old item.
    remade: frozenset[str]
    unsettled: Unsettled  # the account item's, afterwards


def keep_at_most(lots: int) -> None:
    """Set ``LIMIT`` for this process (the composition root's, from ``Settings.unsettled_lots``).
    0 while any running version ignores unsettled credits: see docs/operations.md."""
    global LIMIT
    LIMIT = lots


def settlement(mutation: Mutation, limit: int | None = None) -> Settlement:
    """How ``mutation``'s draws, transfers and write-offs reach the lots' items."""
    limit = LIMIT if limit is None else limit
    owed = dict(mutation.account.unsettled)
    if mutation.spend:  # a slice's own change: no lot, and the account item is not written
        return Settlement((), frozenset(), tuple(owed.items()))
    drawn = _drawn(mutation)
    for lot_id, amount in drawn.items():  # kept on the account item, the newest last
        owed[lot_id] = owed.pop(lot_id, 0) + amount
    moved: list[tuple[Guard, Draw]] = [("transfer", t) for t in mutation.transfers]
    moved += [("expire", x) for x in mutation.expirations]
    writes = [
        LotWrite(move.lot_id, guard, move.amount + owed.pop(move.lot_id, 0), _deletes(mutation, move.lot_id, guard))
        for guard, move in moved
    ]
    remade = frozenset(lot.lot_id for lot in mutation.new_lots if lot.remaining and lot.lot_id in owed)
    for lot_id in remade:
        del owed[lot_id]
    writes += _settled(mutation, owed, drawn, _touched(mutation, writes, remade), limit)
    return Settlement(tuple(writes), remade, tuple(owed.items()))


def _deletes(mutation: Mutation, lot_id: str, guard: str) -> bool:
    return guard == "expire" or lot_id in mutation.emptied


def _touched(mutation: Mutation, writes: list[LotWrite], remade: frozenset[str]) -> set[str]:
    """Lots whose items the mutation changes otherwise (one transaction changes an item once)."""
    flagged = (*mutation.warned, *mutation.frozen, *mutation.unfrozen, *(r.lot_id for r in mutation.returns))
    return {write.lot_id for write in writes} | set(flagged) | remade


def _settled(
    mutation: Mutation, owed: dict[str, int], drawn: Mapping[str, int], touched: set[str], limit: int
) -> list[LotWrite]:
    """The oldest unsettled credits past ``limit``, written on their lots (popped from ``owed``).
    Only a change that draws adds any, and its account holds every live lot (never the
    sweep's summary), so what each lot holds afterwards is known."""
    if not drawn:
        return []
    live = {lot.lot_id: lot.remaining for lot in mutation.account.lots}
    excess = max(0, len(owed) - limit)
    writes = []
    for lot_id in [lot_id for lot_id in owed if lot_id not in touched][:excess]:
        credits = owed.pop(lot_id)
        left = live.get(lot_id, 0) - drawn.get(lot_id, 0)
        writes.append(LotWrite(lot_id, "draw" if lot_id in drawn else "transfer", credits, deletes=left == 0))
    return writes


def draws_fit(mutation: Mutation, now: int) -> bool:
    """Whether each draw takes no more than its lot holds, from a lot unexpired at ``now``, in
    the state the mutation was computed from: the guard a draw written on its lot's item had.
    The account's version pins that state down, so the stores check it before they write."""
    lots = {lot.lot_id: lot for lot in mutation.account.lots}
    for lot_id, amount in _drawn(mutation).items():
        lot = lots.get(lot_id)
        if lot is None or amount > lot.remaining or (lot.expires_at is not None and lot.expires_at <= now):
            return False
    return True


def _drawn(mutation: Mutation) -> dict[str, int]:
    drawn: dict[str, int] = {}
    for draw in mutation.draws:
        drawn[draw.lot_id] = drawn.get(draw.lot_id, 0) + draw.amount
    return drawn


def unsettled_after(mutation: Mutation) -> Unsettled:
    """The account's unsettled credits once ``mutation`` is written."""
    return settlement(mutation).unsettled


def as_read(lots: Iterable[Lot], unsettled: Unsettled) -> tuple[Lot, ...]:
    """The lots as the account holds them: each item's credits less its unsettled ones; a lot
    left with none has left the account."""
    owed = dict(unsettled)
    read = (replace(lot, remaining=lot.remaining - owed.get(lot.lot_id, 0)) for lot in lots)
    return tuple(lot for lot in read if lot.remaining > 0)
