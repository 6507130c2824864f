"""What moving credits between an account and its escrow slices does to the account's
side (``domain.slices``): used by ``Mutation.account_after``."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollbooth.domain.ledger import Account, SliceMove


def escrow_change(account: Account, moves: tuple[SliceMove, ...]) -> tuple[int, int]:
    """What slice moves change on the account's side: the credits they move into slices
    (negative: recalled), and what the slices spent that a recall folds into the account."""
    received = {e.index: e.received for e in account.escrow}
    moved = sum((0 if m.escrow is None else m.escrow.received) - received.get(m.before.index, 0) for m in moves)
    return moved, sum(m.before.consumed - m.after.consumed for m in moves)


def with_slices(account: Account, moves: tuple[SliceMove, ...], *, recorded: bool = True) -> Account:
    """The account with its slices' new states, and (``recorded``) what its item records of
    them: their escrow, and (from a slice's first refill) that it is one of its streams."""
    if not moves:
        return account
    indexes = {m.after.index for m in moves}
    slices = [s for s in account.slices if s.index not in indexes] + [m.after for m in moves]
    ordered = tuple(sorted(slices, key=lambda s: s.index))
    if not recorded:
        return replace(account, slices=ordered)
    escrow = [e for e in account.escrow if e.index not in indexes] + [m.escrow for m in moves if m.escrow is not None]
    streams = set(account.streams) | {m.after.index for m in moves if m.escrow is not None}
    return replace(
        account,
        escrow=tuple(sorted(escrow, key=lambda e: e.index)),
        slices=ordered,
        streams=tuple(sorted(streams)),
    )
