"""Credits put back into the lots they came from: what a hold releases, and what a reversal
gives back. Each portion is a copy of its lot's terms holding the credits going back.

A portion goes back into its lot while the lot still holds credits, or into the lot made
again from its terms once it has left the store; a portion of a lot whose expiry has
passed is written off at once instead, by an ``expire`` entry of its own (with its
breakage, as the sweep would have), after the entry of the change that freed it. What a
refund or a void still claims of its lot is taken first (``domain.claims``); then, as new
credits do (``allocation.pay_off_arrears``), what comes back pays the account's arrears,
soonest-expiring first (never out of a disputed lot, whose credits are frozen).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from tollbooth.domain.allocation import take_in_order
from tollbooth.domain.claim_state import Claim
from tollbooth.domain.claims import Taken, claim_entries, take_claims
from tollbooth.domain.expiry import expire_details, expired_event
from tollbooth.domain.ledger import Account, Draw, LedgerEntry, Lot, Mutation, next_entry


@dataclass(frozen=True)
class GivenBack:
    returns: tuple[Draw, ...] = ()  # into lots still in the store
    remade: tuple[Lot, ...] = ()  # lots made again from their terms
    expired: tuple[Lot, ...] = ()  # portions of lots past their expiry: written off
    taken: tuple[Taken, ...] = ()  # what claims took (``domain.claims``)
    claims: tuple[Claim, ...] | None = None  # the account's claims afterwards; None: as before
    arrears_paid: int = 0  # what the credits coming back paid of the arrears left after claims

    @property
    def returned(self) -> int:
        """Credits back in lots (those written off aside)."""
        return sum(draw.amount for draw in self.returns) + sum(lot.remaining for lot in self.remade)

    @property
    def written_off(self) -> int:
        return sum(portion.remaining for portion in self.expired)


def give_back(
    account: Account,
    portions: Iterable[Lot],
    now: int,
    *,
    write_off_at_most: int | None = None,
    arrears: int | None = None,
) -> GivenBack:
    """Where each portion's credits go: to a claim on its lot; back into its lot, into its
    lot made again, or (its lot expired) written off, an entry each: when that would be more
    entries than ``write_off_at_most``, expired credits go back too, and the sweep writes
    them off. ``arrears``: what is left of them for a ``debt`` claim (the account's)."""
    portions = tuple(portions)
    live = {lot.lot_id for lot in account.lots}
    expiring = sum(1 for p in portions if p.remaining > 0 and p.expires_at is not None and now >= p.expires_at)
    write_off = write_off_at_most is None or expiring <= write_off_at_most
    claimed = None
    owed = account.arrears if arrears is None else arrears
    if account.clawing:
        claimed = take_claims(account.clawing, portions, owed, now)
        portions = claimed.portions
        owed -= sum(taken.amount for taken in claimed.taken if taken.kind == "debt")
    # Only what may still be spent pays: not an expired portion, nor a disputed lot's.
    payers = [p for p in portions if p.spendable_at(now) and p.lot_id not in account.disputed]
    portions, paid = _paying(portions, payers, owed)
    returns, remade, expired = [], [], []
    for portion in portions:
        if portion.remaining <= 0:
            continue
        if write_off and portion.expires_at is not None and now >= portion.expires_at:
            expired.append(portion)
        elif portion.lot_id in live:
            returns.append(Draw(portion.lot_id, portion.remaining))
        else:
            remade.append(replace(portion, warned=False, frozen=portion.lot_id in account.disputed))
    if claimed is None:
        return GivenBack(tuple(returns), tuple(remade), tuple(expired), arrears_paid=paid)
    return GivenBack(tuple(returns), tuple(remade), tuple(expired), claimed.taken, claimed.claims, paid)


def _paying(portions: tuple[Lot, ...], payers: list[Lot], arrears: int) -> tuple[tuple[Lot, ...], int]:
    """``portions`` less what ``payers`` (some of them) pay of ``arrears``, soonest-expiring
    first; and what they paid."""
    if arrears <= 0 or not payers:
        return portions, 0
    draws, left = take_in_order(payers, arrears)
    paid = {draw.lot_id: draw.amount for draw in draws}
    return tuple(replace(p, remaining=p.remaining - paid.pop(p.lot_id, 0)) for p in portions), arrears - left


def with_taken(mutation: Mutation, back: GivenBack, now: int) -> Mutation:
    """``mutation`` (the change that gave ``back`` credits) with the arrears they paid (in its
    entry's ``arrears_paid``), the entries of what claims took of them, after its own, and
    the claims left."""
    if back.arrears_paid:
        first, *rest = mutation.entries
        noted = replace(first, details={**first.details, "arrears_paid": back.arrears_paid})
        arrears = mutation.arrears_change - back.arrears_paid
        mutation = replace(mutation, entries=(noted, *rest), arrears_change=arrears)
    if back.claims is None:
        return mutation
    account = mutation.account
    entries, events, paid = claim_entries(account, mutation.entries[-1], back.taken, now)
    pending = account.pending_events if mutation.pending_events is None else mutation.pending_events
    return replace(
        mutation,
        entries=(*mutation.entries, *entries),
        arrears_change=mutation.arrears_change - paid,
        pending_events=(*pending, *events),
        clawing=back.claims,
    )


def write_offs(
    account: Account, after: LedgerEntry, expired: tuple[Lot, ...], now: int, tag: str
) -> tuple[list[LedgerEntry], list[dict[str, Any]]]:
    """An ``expire`` entry, and its ``credits.expired`` event, for each expired portion,
    numbered after ``after``; ``tag`` makes each event's id this change's own (the sweep's id
    for the lot may have been used already)."""
    entries: list[LedgerEntry] = []
    events: list[dict[str, Any]] = []
    last = after
    for portion in expired:
        step = replace(account, seq=last.seq, balance=last.balance_after or 0)
        last = next_entry(step, "expire", -portion.remaining, now, None, expire_details(portion, portion.remaining))
        entries.append(last)
        event_id = f"credits.expired:{account.account_id}:{portion.lot_id}:{tag}:{after.seq}"
        events.append(expired_event(account.account_id, last, portion, now, event_id=event_id))
    return entries, events
