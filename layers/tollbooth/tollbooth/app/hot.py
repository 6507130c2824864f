"""Consumes of a busy account, served by escrow slices (``domain.slices``).

An account's consumes go to its own item until one of them loses a race on a fresh read,
or this container makes its ``BUSY_COUNT``-th consume of it within ``BUSY_WINDOW_SECONDS``
(a container that wins every race holds the account item while the others' refills lose
to it; a person using an app does not keep that pace): the account is contended. From
then on this container spends from one slice, its own by a random pick, which it leaves
for another when it loses a race there too. A slice short of credits is refilled from
the account's lots; when those fall short, the container moves to a slice that can pay
alone, or the write loop recalls the slices that make up the shortfall, so a consume is
refused only when the whole account cannot pay. A refill that lost the account item looks
at its slice while it waits: the writer it lost to may be filling it. While the account has
credits in escrow, its consumes keep going to slices; any other change recalls them, and
the next contention moves the account to slices again.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace

from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.ports import LedgerStore
from tollbooth.app.receipts import with_consume_receipt
from tollbooth.app.writes import Plan, Refused, Writes
from tollbooth.domain import slices
from tollbooth.domain.errors import ChangeTooLarge, ConcurrentUpdate, FeatureLocked, InsufficientCredits
from tollbooth.domain.ledger import Account, Mutation, Use
from tollbooth.domain.pricing import Charge

# Steps one consume may take on slices before it gives up: refills (each a committed move
# of credits, so running out means other containers emptied the slice as fast as it was
# filled), moves off a busy slice, and moves to a slice holding the last credits.
MAX_STEPS = 16
# This many consumes of one account by one container within the window: the account is busy.
BUSY_COUNT = 2
BUSY_WINDOW_SECONDS = 0.25
REMEMBERED = 1024  # accounts whose last consume a container remembers
# How long one request may keep refilling while other containers hold the account item
# (each refill within its own write budget): below the functions' 10 s timeout, with room
# for the last attempt and the answer. At the end of a busy account's credits every
# container queues for the account item at once; a refill that gave up looks again rather
# than answer 409 for credits the account still holds.
REQUEST_SECONDS = 7.0

Priced = Callable[[int], tuple[Charge, Use]]
Need = Callable[[int], tuple[int, Use]]  # what a change needs of a slice, and what it may pay for
SlicePlan = Callable[[Account, int, int], Mutation]  # a change on (a slice's view, its index, now)
Request = Callable[..., Outcome]  # LedgerService._request: a plan written once, with replays
Replay = Callable[[str, Idempotency], Outcome | None]


class Contended(Exception):
    """The account is busy, or has credits in escrow: its consumes go to slices."""


class _SliceBusy(Exception):
    """Another container spends from this slice: move to another one."""


class HotConsumes:
    def __init__(self, writes: Writes, store: LedgerStore, count: int, request: Request, replay: Replay) -> None:
        self.count = count
        self._writes = writes
        self._store = store
        self._request = request
        self._replay = replay
        self.index = random.randrange(count) if count else 0  # this container's slice
        self._recent: OrderedDict[str, tuple[float, ...]] = OrderedDict()  # account -> its last consumes here
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.count > 0

    def busy(self, account_id: str) -> bool:
        """Whether this consume keeps a pace on the account no person keeps (and note it)."""
        now = time.monotonic()
        with self._lock:
            recent = (*self._recent.pop(account_id, ()), now)[-BUSY_COUNT:]
            self._recent[account_id] = recent
            while len(self._recent) > REMEMBERED:
                self._recent.popitem(last=False)
        return self.enabled and len(recent) == BUSY_COUNT and now - recent[0] < BUSY_WINDOW_SECONDS

    def on_race(self) -> None:
        """A consume on the account's own item lost a race on a fresh read."""
        if self.enabled:
            raise Contended

    def consume(
        self, account_id: str, idem: Idempotency, priced: Priced, caller: Mapping[str, str], whole: Plan
    ) -> Outcome:
        """Spend from this container's slice, refilling it as need be; ``whole`` is the plan
        of a consume on the account itself, for a debit wider than a slice can take."""

        def on_slice(view: Account, index: int, now: int) -> Mutation:
            charge, use = priced(now)
            mutation = slices.spend(view, index, charge, use, now, idem.key, caller)
            return with_consume_receipt(mutation, charge, idem, now)

        def on_account(account: Account, now: int) -> Mutation:
            # Written on the account's own lots, its slices left alone.
            charge, use = priced(now)
            mutation = slices.debit_on_account(account, self.index, charge, use, now, idem.key, caller)
            return with_consume_receipt(mutation, charge, idem, now)

        def need(now: int) -> tuple[int, Use]:
            charge, use = priced(now)
            return charge.amount, use

        return self.serve(account_id, idem, need, on_slice, on_account, whole)

    def serve(
        self, account_id: str, idem: Idempotency, need: Need, on_slice: SlicePlan, on_account: Plan, whole: Plan
    ) -> Outcome:
        """Write ``on_slice`` on this container's slice, refilling it with what ``need`` says
        as need be; ``on_account`` when the account's lots hold too little to share out,
        ``whole`` (the slices pooled) for a change wider than a slice can take."""
        start: Account | None = None
        until = time.monotonic() + REQUEST_SECONDS
        for _ in range(MAX_STEPS):
            index = self.index
            try:
                return self._on_slice(account_id, index, idem, on_slice, start)
            except _SliceBusy:
                self._move()
                start = None
                continue
            except (InsufficientCredits, FeatureLocked):
                pass  # the slice cannot pay: refill it from the account
            try:
                step = self._from_account(account_id, index, idem, need, on_account, until)
            except ConcurrentUpdate:
                if time.monotonic() >= until:
                    raise
                start = None  # the account item stayed busy: look at the slice again, then try anew
                continue
            except slices.Elsewhere as found:  # not a move of credits: go where they are
                self.index, start = found.index, None
                continue
            except (slices.SliceTooNarrow, ChangeTooLarge):
                # Wider than a slice may hold: written on the account (the slices recalled first).
                return self._request(account_id, idem, whole)
            except Refused as refused:  # the whole account cannot pay
                replay = self._replay(account_id, idem)
                if replay is not None:
                    return replay
                raise refused.error from None
            if isinstance(step, Outcome):
                return step
            start = step
        raise ConcurrentUpdate("the account is busy; retry the request with the same Idempotency-Key")

    def _from_account(
        self, account_id: str, index: int, idem: Idempotency, need: Need, on_account: Plan, until: float
    ) -> Account | Outcome | None:
        """Refill the slice from the account (the slice as it stands afterwards), or, when the
        account's lots hold too little to share out, write ``on_account`` on them (its answer)."""
        try:
            return self._refill(account_id, index, need, until)
        except slices.Scarce:
            return self._on_account(account_id, idem, on_account, until)

    def _on_account(self, account_id: str, idem: Idempotency, on_account: Plan, until: float) -> Outcome:
        """``on_account`` on the account's own lots, its slices left alone. Each attempt reads
        the account's own side alone (one Query): while every container is after the last
        credits, a shorter read-to-write cycle commits more of them. Only when its own lots
        do not settle it is the account read whole, with its slices (what a refusal rests on)."""
        options = {"pool": False, "until": until}
        try:
            return self._request(account_id, idem, on_account, load=self._store.load_own, **options)
        except slices.NeedWhole:
            return self._request(account_id, idem, on_account, load=self._store.load_account, **options)

    def _on_slice(
        self, account_id: str, index: int, idem: Idempotency, on_slice: SlicePlan, start: Account | None
    ) -> Outcome:
        return self._request(
            account_id,
            idem,
            lambda view, now: on_slice(view, index, now),
            start=start,
            load=lambda account: self._store.load_slice(account, index),
            remember_as=f"{account_id}#slice#{index}",
            pool=False,
            on_race=self._busy,
        )

    def _refill(self, account_id: str, index: int, need: Need, until: float) -> Account | None:
        """Fill the slice from the account: the slice as it stands afterwards (None: it was
        filled meanwhile, by another container's refill). The account is read on its own
        side with this slice (two reads, the shortest window before the write while every
        container races for the account item), and whole only when its own lots fall short."""
        try:
            return self._fill(account_id, index, need, until, whole=False)
        except slices.NeedWhole:
            return self._fill(account_id, index, need, until, whole=True)

    def _fill(self, account_id: str, index: int, need: Need, until: float, *, whole: bool) -> Account | None:
        share = max(1, self.count)
        max_items = self._store.max_transaction_items
        window = self._store.expiry.warning_window
        load = self._store.load_account if whole else lambda account: self._own_side(account, index)

        def plan(account: Account, now: int) -> Mutation | None:
            needed, use = need(now)
            return slices.refill(
                account, index, needed, use, now, share=share, max_items=max_items, window=window, whole=whole
            )

        def slice_pays(now: int) -> bool:
            # Looked at while the refill waits out a lost race on the account item: the writer
            # it lost to is often another container's refill, which fills this slice too.
            needed, use = need(now)
            return slices.pays(self._store.load_slice(account_id, index).slice(index), needed, use, now)

        # Read afresh: the slices' states this container remembers of the account are old.
        written = self._writes.write(account_id, plan, pool=False, load=load, until=until, settled=slice_pays)
        if written is None:
            return None
        filled = next(m.after for m in written.mutation.slice_moves if m.after.index == index)
        return Account(account_id, slices=(filled,))

    def _own_side(self, account_id: str, index: int) -> Account:
        own = self._store.load_own(account_id)
        return replace(own, slices=self._store.load_slice(account_id, index).slices)

    @staticmethod
    def _busy() -> None:
        raise _SliceBusy

    def _move(self) -> None:
        if self.count > 1:
            self.index = random.choice([i for i in range(self.count) if i != self.index])
