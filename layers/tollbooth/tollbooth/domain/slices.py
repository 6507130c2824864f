"""Escrow slices: how one account serves many containers spending at once.

A consume on an ordinary account is one transaction on the account item, so concurrent
consumes of one account queue on that item (on AWS, overlapping transactions on one item
are cancelled). Once an account is contended, its consumes move to *slices*: slice k is an
item on a partition of its own holding *portions*, credits moved out of the account's lots,
each with its lot's terms (expiry, priority, restrictions, perks). A container sticks to
one slice, so a consume writes only its slice, its entry (in the slice's partition) and its
idempotency record: nothing that another container's consume writes.

- **Refill** (``refill``): a slice short of credits that may pay takes a chunk from the
  account's lots, in burn-down order, in one transaction over the account item, the lots and
  the slice. The chunk is what the request needs, or a ``share``-th of what the lots hold
  that may pay, whichever is more.
- **Recall** (``recall``): a slice's portions go back into their lots (re-creating a lot
  that left the store with its last credit), and what the slice spent is folded into the
  account's totals. Every change to an account other than a slice's own consume recalls
  its slices first, so purchases, refunds, usage and the sweep see the account whole.
- **A 402 only after pooling**: a refill that the account's own lots cannot cover recalls
  every slice first (``PoolNeeded``); only a shortfall of the whole account refuses.

Order: within a slice, burn-down order holds over what the slice holds, and a slice's
entries are numbered 1, 2, 3... (``LedgerEntry.slice``, ``seq``) at instants that never go
back. Across the account, the order is by instant, then the account's own entries before
the slices', then by slice and seq. Conservation: the account's side owes what it moved out
(``Account.escrowed``), each slice holds what it received less what it spent, so the whole
account is ``granted - consumed - expired - clawed_back`` = lots + portions - intent - arrears.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from tollbooth.domain import ids
from tollbooth.domain.allocation import allocate, take_in_order
from tollbooth.domain.claim_state import through_account
from tollbooth.domain.debits import consume_details, consume_mutation
from tollbooth.domain.expiry import lot_due_at
from tollbooth.domain.ledger import Account, Draw, Escrow, LedgerEntry, Lot, Mutation, Slice, SliceMove, Use
from tollbooth.domain.pricing import Charge

# Items a refill or a recall writes besides the lots: the account item and the slice.
OVERHEAD = 2
# A refill gives empty sibling slices a share while that share pays this many such requests.
RICH = 4


class PoolNeeded(Exception):
    """The account's own lots fall short while its slices hold credits: recall ``indexes``
    (None: every slice) first."""

    def __init__(self, indexes: tuple[int, ...] | None = None) -> None:
        super().__init__("recall slices first")
        self.indexes = indexes


class Scarce(Exception):
    """The account's lots hold too little to share out: a share of them would not pay this
    request, so the debit is written on the account itself (``debit_on_account``), in one
    transaction, rather than filled into a slice that another container might recall."""


class NeedWhole(Exception):
    """The account was read without its slices (its own side, ``load_own``), and its own
    lots do not settle the request: read it whole, with its slices, and plan again."""


class Elsewhere(Exception):
    """The account's own lots cannot pay, but slice ``index`` can: spend there, rather than
    recall it into the lots only to refill another slice from them (at the end of an
    account's credits, recalls and refills all queue on the account item)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"slice {index} holds the credits")
        self.index = index


class SliceTooNarrow(Exception):
    """The debit needs more lots than a slice can take in one transaction: it is written on
    the account instead (with an intent, if need be)."""


def spend(
    account: Account, index: int, charge: Charge, use: Use, now: int, key: str, caller: Mapping[str, str]
) -> Mutation:
    """A consume paid by slice ``index`` alone: InsufficientCredits / FeatureLocked when what
    the slice holds may not pay (the caller refills, and only a pooled account refuses)."""
    held = account.slice(index)
    draws = allocate(Account(account.account_id, lots=held.portions), charge.amount, now, use)
    at = max(now, held.last_at)
    details = consume_details(charge, draws, held.portions, caller)
    entry = LedgerEntry(
        ids.entry_id(at, held.seq + 1, index), held.seq + 1, "consume", -charge.amount, None, at, key, details, index
    )
    after = replace(
        held,
        version=held.version + 1,
        portions=taken_from(held.portions, draws),
        consumed=held.consumed + charge.amount,
        seq=held.seq + 1,
        last_at=at,
    )
    return Mutation(account, (entry,), slice_moves=(SliceMove(held, after),), spend=True)


def refill(
    account: Account,
    index: int,
    needed: int,
    use: Use,
    now: int,
    *,
    share: int,
    max_items: int,
    window: int,
    whole: bool = True,
) -> Mutation | None:
    """Move credits of the account's lots that may pay for ``use`` into slice ``index``: what
    it needs, or its share (half the lots over ``share`` slices), whichever is more; and a
    share into each other slice holding nothing, as far as one transaction allows, so that
    the account's other containers find theirs filled. None when the slice can pay already.

    ``whole=False``: the account was read on its own side with slice ``index`` alone (the
    shortest read while containers race for the account item). NeedWhole when its own lots
    cannot pay; only slices that never existed (not among its streams) are filled besides."""
    if pays(account.slice(index), needed, use, now):
        return None
    if not whole and (account.arrears or not _covers(account.lots, needed, now, use)):
        raise NeedWhole
    _spend_where_the_credits_are(account, index, needed, now, use)
    lots_must_cover(account, index, needed, now, use)
    eligible = [lot for lot in account.lots if lot.spendable_at(now) and lot.pays_for(use)]
    unlocking = [lot for lot in account.lots if lot.spendable_at(now) and use.feature in lot.unlocks]
    chunk = sum(lot.remaining for lot in eligible) // (2 * share)
    if chunk < needed:
        raise Scarce
    lots = {lot.lot_id: lot for lot in account.lots}
    filling = Filling(account, eligible, lots, max_items, window)
    held = account.slice(index)
    unlocked = any(use.feature in p.unlocks for p in held.portions if p.spendable_at(now))
    first = filling.fill(index, max(needed, chunk), unlocking if use.locked and not unlocked else [])
    if first < needed:
        raise SliceTooNarrow
    # Siblings get a share only while the lots hold plenty: near the end, credits stay where
    # any slice's refill finds them, rather than scattered where only a recall would.
    skipped = {e.index for e in account.escrow if not account.slice(e.index).idle} | {index}
    skipped |= set() if whole else set(account.streams)  # slices not read: their state is unknown
    for sibling in range(share) if chunk >= RICH * needed else ():
        if sibling not in skipped and not filling.fill(sibling, chunk, []):
            break
    return Mutation(account, draws=filling.draws(), slice_moves=tuple(filling.moves))


class Filling:
    """The slices one refill fills, and the lot draws that fill them, within one transaction."""

    def __init__(self, account: Account, eligible: list[Lot], lots: dict[str, Lot], max_items: int, window: int):
        self.account = account
        self.left = list(eligible)  # what the lots still hold, as the slices take it
        self.lots = lots
        self.room = max_items - 1  # the account item
        self.max_portions = max_items - OVERHEAD  # what one recall of a slice can write
        self.window = window
        self.drawn: dict[str, int] = {}
        self.moves: list[SliceMove] = []

    def fill(self, index: int, amount: int, unlocking: list[Lot]) -> int:
        """Give slice ``index`` up to ``amount``: what it was given (0 when there is no room)."""
        held = self.account.slice(index)
        draws, _ = take_in_order([lot for lot in self.left if lot.remaining], amount)
        if unlocking:
            draws = _with_unlocking(draws, unlocking)
        draws = self._fitting(draws, held)
        given = sum(draw.amount for draw in draws)
        if not given:
            return 0
        for draw in draws:
            self.drawn[draw.lot_id] = self.drawn.get(draw.lot_id, 0) + draw.amount
        self.left = [
            replace(lot, remaining=self.lots[lot.lot_id].remaining - self.drawn.get(lot.lot_id, 0)) for lot in self.left
        ]
        after = replace(held, version=held.version + 1, portions=_given(held.portions, draws, self.lots))
        was = next((e for e in self.account.escrow if e.index == index), Escrow(index, 0))
        moments = [lot_due_at(replace(self.lots[d.lot_id], remaining=d.amount), self.window) for d in draws]
        due = min([at for at in (*moments, was.due_at) if at is not None], default=None)
        self.moves.append(SliceMove(held, after, Escrow(index, was.received + given, due)))
        return given

    def _fitting(self, draws: tuple[Draw, ...], held: Slice) -> tuple[Draw, ...]:
        """The first of ``draws`` that fit: the slice's lots within what one recall writes,
        and the slice and the lots this refill has not drawn yet within the transaction."""
        if self.room < 1:  # not even the slice item fits
            return ()
        in_slice = {p.lot_id for p in held.portions}
        slice_room, room = self.max_portions - len(in_slice), self.room - 1
        kept: list[Draw] = []
        for draw in draws:
            new_to_slice, new_to_transaction = draw.lot_id not in in_slice, draw.lot_id not in self.drawn
            if (new_to_slice and slice_room <= 0) or (new_to_transaction and room <= 0):
                break
            slice_room -= new_to_slice
            room -= new_to_transaction
            kept.append(draw)
        if kept:
            self.room = room
        return tuple(kept)

    def draws(self) -> tuple[Draw, ...]:
        return tuple(Draw(lot_id, amount) for lot_id, amount in self.drawn.items())


def debit_on_account(
    account: Account, index: int, charge: Charge, use: Use, now: int, key: str, caller: Mapping[str, str]
) -> Mutation:
    """A consume written on the account's own lots while its slices hold credits (they are
    left alone): its entry has no balance_after, which only the whole account knows."""
    lots_must_cover(account, index, charge.amount, now, use)
    return on_own_side(consume_mutation(account, charge, use, now, key, caller))


def on_own_side(mutation: Mutation) -> Mutation:
    """A mutation written on the account alone while slices hold credits: its entries have
    no balance_after, which only the whole account knows."""
    if not mutation.account.escrow:
        return mutation
    return replace(mutation, entries=tuple(replace(entry, balance_after=None) for entry in mutation.entries))


def lots_must_cover(account: Account, index: int, needed: int, now: int, use: Use) -> None:
    """Return when the account's own lots may pay ``needed``; else recall the slices that
    can make them (PoolNeeded), or refuse when the whole account, its slices' credits with
    its own, cannot pay, as read while the account stood still (a read that could not catch
    it recalls every slice instead, after which the account's own state is the whole)."""
    if not account.arrears and _covers(account.lots, needed, now, use):
        return
    if account.escrow and not account.slices:
        raise NeedWhole
    if account.escrow and not account.consistent:
        raise PoolNeeded(None)
    allocate(pooled(account), needed, now, use)
    raise PoolNeeded(_to_recall(account, index, needed, now, use))


def _spend_where_the_credits_are(account: Account, index: int, needed: int, now: int, use: Use) -> None:
    """Raise Elsewhere when the account's own lots cannot pay but another slice, as read
    with them, can alone: the one holding the most that may pay."""
    if account.arrears or not account.consistent or _covers(account.lots, needed, now, use):
        return
    paying = [held for held in account.slices if held.index != index and _covers(held.portions, needed, now, use)]
    if paying:
        richest = max(paying, key=lambda held: sum(p.remaining for p in held.portions if p.pays_for(use)))
        raise Elsewhere(richest.index)


def pays(held: Slice, needed: int, use: Use, now: int) -> bool:
    """Whether slice ``held`` may pay ``needed`` for ``use`` as it stands."""
    return _covers(held.portions, needed, now, use)


def _covers(lots: tuple[Lot, ...] | list[Lot], needed: int, now: int, use: Use) -> bool:
    """Whether ``lots`` may pay ``needed`` for ``use`` (a locked feature: and unlock it)."""
    spendable = [lot for lot in lots if lot.spendable_at(now)]
    unlocked = not use.locked or any(use.feature in lot.unlocks for lot in spendable)
    return unlocked and sum(lot.remaining for lot in spendable if lot.pays_for(use)) >= needed


def _to_recall(account: Account, index: int, needed: int, now: int, use: Use) -> tuple[int, ...] | None:
    """The fewest slices whose credits, with the account's lots, may pay: those holding the
    most first, ties taken from the asking slice onwards, so that containers short at once
    recall different slices (None: every slice, for a locked feature the lots do not unlock)."""
    spendable = [lot for lot in account.lots if lot.spendable_at(now)]
    if use.locked and not any(use.feature in lot.unlocks for lot in spendable):
        return None
    have = sum(lot.remaining for lot in spendable if lot.pays_for(use))
    worth = {
        held.index: sum(p.remaining for p in held.portions if p.spendable_at(now) and p.pays_for(use))
        for held in account.slices
    }
    chosen: list[int] = []
    for other in sorted(worth, key=lambda i: (-worth[i], (i - index) % (max(worth) + 1))):
        if have >= needed:
            break
        if worth[other]:
            chosen.append(other)
            have += worth[other]
    return tuple(chosen)


def recall(account: Account, index: int, now: int) -> Mutation:
    """Put what slice ``index`` holds back into its lots, and fold what it spent into the
    account's totals: afterwards the slice holds nothing of the account's but its open
    holds, which stay on it until they close (``domain.slice_holds``)."""
    held = account.slice(index)
    present = {lot.lot_id for lot in account.lots}
    returns = tuple(Draw(p.lot_id, p.remaining) for p in held.portions if p.lot_id in present and p.remaining)
    recreated = tuple(
        replace(p, frozen=p.lot_id in account.disputed)
        for p in held.portions
        if p.lot_id not in present and p.remaining
    )
    lots = through_account(account.disputed, account.clawing)
    after = replace(held, version=held.version + 1, portions=(), consumed=0, through_account=lots)
    move = SliceMove(held, after, holding(after, now))
    return Mutation(account, returns=returns, new_lots=recreated, slice_moves=(move,))


def holding(held: Slice, now: int) -> Escrow | None:
    """What the account item records of a slice holding nothing but open holds."""
    return Escrow(held.index, held.total, held.next_due(now)) if held.holds else None


def in_escrow(account: Account) -> bool:
    """Whether slices hold credits that may be spent: any slice a recall would move (one
    not read with the account counts as such)."""
    read = {held.index: held for held in account.slices}
    return any(e.index not in read or not read[e.index].idle for e in account.escrow)


def pooled(account: Account) -> Account:
    """The whole account as one, for reads: each slice's portions back in their lots, its
    open holds with the account's, and what the slices spent in the totals (nothing is
    written)."""
    remaining = {lot.lot_id: lot.remaining for lot in account.lots}
    terms = {lot.lot_id: lot for lot in account.lots}
    for held in account.slices:
        for portion in held.portions:
            remaining[portion.lot_id] = remaining.get(portion.lot_id, 0) + portion.remaining
            terms.setdefault(portion.lot_id, portion)
    lots = tuple(replace(terms[lot_id], remaining=left) for lot_id, left in remaining.items() if left > 0)
    spent = sum(held.consumed for held in account.slices)
    in_slices = sum(held.total for held in account.slices)
    return replace(
        account,
        lots=lots,
        balance=account.balance + in_slices,
        consumed=account.consumed + spent,
        escrow=(),
        slices=(),
        holds=account.holds + tuple(ref for held in account.slices for ref in held.holds),
    )


def taken_from(portions: tuple[Lot, ...], draws: tuple[Draw, ...]) -> tuple[Lot, ...]:
    taken = {draw.lot_id: draw.amount for draw in draws}
    left = (replace(p, remaining=p.remaining - taken.get(p.lot_id, 0)) for p in portions)
    return tuple(p for p in left if p.remaining > 0)


def _given(portions: tuple[Lot, ...], draws: tuple[Draw, ...], lots: dict[str, Lot]) -> tuple[Lot, ...]:
    given = {draw.lot_id: draw.amount for draw in draws}
    kept = [replace(p, remaining=p.remaining + given.pop(p.lot_id, 0)) for p in portions]
    return tuple(kept) + tuple(replace(lots[lot_id], remaining=amount) for lot_id, amount in given.items())


def _with_unlocking(draws: tuple[Draw, ...], unlocking: list[Lot]) -> tuple[Draw, ...]:
    """A locked feature needs a portion of a lot that unlocks it: one credit of it, at least."""
    if not unlocking or any(draw.lot_id in {lot.lot_id for lot in unlocking} for draw in draws):
        return draws
    return (*draws, Draw(unlocking[0].lot_id, 1))
