"""Escrow slices' state (``domain.slices``): a slice, what the account records of it, a
move of credits between them, and what such moves do to the account's side (used by
``Mutation.account_after``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tollbooth.domain.hold_state import HoldRef

if TYPE_CHECKING:
    from tollbooth.domain.ledger import Account, Lot


@dataclass(frozen=True)
class Slice:
    """One slice of a hot account's escrow (``domain.slices``): credits moved out of the
    account's lots onto a partition of their own, so that consumes spend them without
    touching the account. Each portion is a copy of its lot's terms holding what the slice
    has of it."""

    index: int
    version: int = 0
    portions: tuple[Lot, ...] = ()
    consumed: int = 0  # spent here since the slice was last recalled
    seq: int = 0  # entries this slice has written, ever
    last_at: int = 0  # the instant of its last entry: a slice's entries never go back in time
    holds: tuple[HoldRef, ...] = ()  # open holds placed on it (``domain.slice_holds``)
    # The account's lots under an open dispute or claimed (``domain.claim_state``), as of its
    # last write with the account: what its holds give back of them goes back through the
    # account (frozen, or to the claim).
    through_account: tuple[str, ...] = ()

    @property
    def held(self) -> int:
        """Credits it may spend or hold: its portions."""
        return sum(portion.remaining for portion in self.portions)

    @property
    def total(self) -> int:
        """Everything it holds of the account's: its portions and its open holds."""
        return self.held + sum(ref.credits for ref in self.holds)

    @property
    def idle(self) -> bool:
        """Nothing a recall would move: no portions, nothing spent since the last (its open
        holds stay on it until they close)."""
        return not self.portions and not self.consumed

    def next_due(self, now: int) -> int | None:
        """The soonest moment after ``now`` the sweep has work on its holds' lots."""
        return min((at for ref in self.holds for at in ref.dues if at > now), default=None)


@dataclass(frozen=True)
class Escrow:
    """What the account has moved into one slice and not recalled (on the account item):
    credits in, net, and the soonest moment the sweep has work on them."""

    index: int
    received: int
    due_at: int | None = None


@dataclass(frozen=True)
class SliceMove:
    """A slice written with a mutation, guarded by its version before; and what the account
    item records of it afterwards (None: the slice holds nothing of the account's)."""

    before: Slice
    after: Slice
    escrow: Escrow | None = None


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
