"""Claims: what a refund could not take from a lot, or a void removed, is still owed when
credits come back into that lot later.

A refund takes what a payment's lots hold. What they no longer hold was spent, or sits in
an open hold; and a charge that spent it may be reversed. A void removes what a lot holds,
with the same gap. When such credits come back into the lot (a hold released, captured
below what it holds, or expired; a charge reversed: ``domain.portions``), the claim takes
them first, up to what it is still owed, so that no credit of a refunded payment or a
voided lot is spendable again:

- ``absorb``: the refund wrote them off as the seller's loss; taken now, the loss shrinks
  (a ``refund`` entry that claws them back);
- ``debt``: the refund put them into arrears; taken now, they pay that debt (a ``refund``
  entry of no credits, the arrears down), as far as arrears remain: what later credits
  paid of it meanwhile was paid, and the credits that come back stay the account's;
- ``void``: credits that come back to a voided lot are removed too (a ``void`` entry).

A claim ends once it has taken all it is owed, at its lot's expiry (credits that come back
after it are written off instead), or, a ``debt`` claim, once the account owes nothing.
Claims live on the account item; slices with open holds learn their lots
(``claim_state.through_account``), so that credits their holds give back of them go back
through the account, where claims apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from tollbooth.domain.claim_state import Claim, ClaimKind, through_account
from tollbooth.domain.events import claimed_events
from tollbooth.domain.ledger import Account, LedgerEntry, Lot, LotSource, Mutation, next_entry
from tollbooth.domain.slice_state import SliceMove


@dataclass(frozen=True)
class Taken:
    lot_id: str
    amount: int
    kind: ClaimKind
    source: LotSource  # the lot's (for its event)


def claiming(claims: tuple[Claim, ...], lot: Lot, owed: int, kind: ClaimKind) -> tuple[Claim, ...]:
    """``claims`` with ``owed`` more of ``lot`` claimed (added to its claim of that kind)."""
    if owed <= 0:
        return claims
    for i, claim in enumerate(claims):
        if claim.lot_id == lot.lot_id and claim.kind == kind:
            return (*claims[:i], replace(claim, owed=claim.owed + owed), *claims[i + 1 :])
    return (*claims, Claim(lot.lot_id, owed, kind, lot.expires_at))


def current(claims: tuple[Claim, ...], now: int) -> tuple[Claim, ...]:
    """The claims still in force: owed something, their lot not expired."""
    return tuple(c for c in claims if c.owed > 0 and (c.expires_at is None or now < c.expires_at))


@dataclass(frozen=True)
class Claimed:
    """Credits coming back, once the claims have taken theirs."""

    portions: tuple[Lot, ...]
    taken: tuple[Taken, ...]
    claims: tuple[Claim, ...]  # afterwards


def take_claims(claims: tuple[Claim, ...], portions: Iterable[Lot], arrears: int, now: int) -> Claimed:
    """What the claims on their lots take of ``portions`` (each a lot's credits coming back),
    in the order the claims were made; a ``debt`` claim takes no more than ``arrears`` left."""
    left = list(current(claims, now))
    kept: list[Lot] = []
    taken: list[Taken] = []
    for portion in portions:
        remaining = portion.remaining
        for i, claim in enumerate(left):
            if claim.lot_id != portion.lot_id or remaining <= 0:
                continue
            amount = min(remaining, claim.owed, arrears if claim.kind == "debt" else remaining)
            if amount <= 0:
                continue
            if claim.kind == "debt":
                arrears -= amount
            remaining -= amount
            left[i] = replace(claim, owed=claim.owed - amount)
            taken.append(Taken(portion.lot_id, amount, claim.kind, portion.source))
        kept.append(replace(portion, remaining=remaining))
    if arrears <= 0:  # the account owes nothing: what debt claims were for is paid
        left = [claim for claim in left if claim.kind != "debt"]
    return Claimed(tuple(kept), tuple(taken), current(tuple(left), now))


def claim_entries(
    account: Account, after: LedgerEntry, taken: tuple[Taken, ...], now: int
) -> tuple[list[LedgerEntry], list[dict[str, Any]], int]:
    """An entry (and its event) per kind of claim that took credits, numbered after
    ``after``; and what they take off the arrears."""
    entries: list[LedgerEntry] = []
    events: list[dict[str, Any]] = []
    last = after
    paid = 0
    for kind in ("absorb", "debt", "void"):
        mine = [t for t in taken if t.kind == kind]
        if not mine:
            continue
        amount = sum(t.amount for t in mine)
        details = {
            "claim": kind,
            "claimed": [{"lot_id": t.lot_id, "amount": t.amount} for t in mine],
            "came_back_with": after.entry_id,
            "arrears_reduced": amount if kind == "debt" else 0,
        }
        step = replace(account, seq=last.seq, balance=last.balance_after or 0)
        credits = 0 if kind == "debt" else -amount  # a debt's credits were taken off the balance already
        last = next_entry(step, "void" if kind == "void" else "refund", credits, now, None, details)
        paid += amount if kind == "debt" else 0
        entries.append(last)
        events += claimed_events(account.account_id, last, kind, [(t.lot_id, t.source, t.amount) for t in mine], now)
    return entries, events, paid


def with_claims(mutation: Mutation, claims: tuple[Claim, ...]) -> Mutation:
    """``mutation`` leaving ``claims`` on the account."""
    return told_slices(replace(mutation, clawing=claims))


def told_slices(mutation: Mutation) -> Mutation:
    """``mutation`` with each slice that holds open holds told which lots go back through
    the account, as the mutation leaves the account's disputes and claims."""
    account = mutation.account
    disputed = account.disputed if mutation.disputed is None else mutation.disputed
    lots = through_account(disputed, account.clawing if mutation.clawing is None else mutation.clawing)
    escrow = {e.index: e for e in account.escrow}
    moved = {move.after.index for move in mutation.slice_moves}
    moves = tuple(
        SliceMove(held, replace(held, version=held.version + 1, through_account=lots), escrow.get(held.index))
        for held in account.slices
        if held.holds and held.through_account != lots and held.index not in moved
    )
    updated = tuple(
        replace(m, after=replace(m.after, through_account=lots)) if m.after.holds else m for m in mutation.slice_moves
    )
    return replace(mutation, slice_moves=updated + moves)
