"""The one loop that writes every mutation: API requests, usage batches and the sweep.

A use case hands it a *plan*: a function from the account as it stands (and the time) to
the ``Mutation`` the domain computes, or None when there is nothing to write. The loop
holds the one rule for optimistic concurrency:

- start from this container's last known state of the account, if any: when it is current,
  a write costs one request; the version guard makes a stale copy safe;
- a plan that refuses on a remembered state is asked again on a fresh read: a refusal is
  never based on a remembered balance;
- a cancelled write (``WriteConflict``) forgets the remembered state, lets the use case
  react (a replay, an event already charged), re-reads, and tries again, with jittered
  backoff after a fresh read lost the race;
- after ``max_attempts``, or once ``budget`` seconds have gone by, it gives up with
  ConcurrentUpdate, having written nothing: a busy account makes a request wait, up to the
  budget, rather than refuse it;
- a mutation larger than one transaction is written as its first transaction plus an
  intent, which the loop then rolls forward; an intent found on an account is rolled
  forward before anything is planned on it (``domain.intents``);
- with ``pool`` (the default), an account whose credits are partly in escrow slices has
  them recalled first, a transaction each (``domain.slices``), so the plan sees the account
  whole; a plan that raises PoolNeeded asks for that on demand.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tollbooth.app import audit
from tollbooth.app.known_accounts import KnownAccounts
from tollbooth.app.ports import LedgerStore, WriteConflict
from tollbooth.domain import clock
from tollbooth.domain.errors import (
    ConcurrentUpdate,
    FeatureLocked,
    InsufficientCredits,
    InvalidPeriod,
    StorageUnavailable,
    StoreBusy,
    TollboothError,
)
from tollbooth.domain.intents import fit, roll_forward
from tollbooth.domain.ledger import Account, Escrow, Mutation
from tollbooth.domain.outbox import spilling
from tollbooth.domain.slices import PoolNeeded, recall

# Refusals that depend on the account's state: a remembered state is re-read before refusing.
STATE_REFUSALS = (InsufficientCredits, FeatureLocked, InvalidPeriod)

# How long a request keeps retrying a busy account, inside the function's 10 s timeout.
WRITE_BUDGET_SECONDS = 5.0

Plan = Callable[[Account, int], Mutation | None]
# Told of each cancelled write; True when the use case made progress from it (no backoff).
ConflictHandler = Callable[[WriteConflict], bool]
Loader = Callable[[str], Account | None]
# Told when a fresh read lost the race (the account is contended); may raise to stop.
RaceHandler = Callable[[], None]
# Whether what a write is for came about another way (a slice that another container's
# refill filled): looked at while the write waits out a lost race, it ends the wait early
# (the plan, on a fresh read, then decides).
Settled = Callable[[int], bool]
WATCH_SECONDS = 0.002  # how often a waiting write looks whether it is settled,
WATCH_LOOKS = 10  # and at most this many times in one wait (one read each)


class Refused(Exception):
    """The plan refused the change (a domain error), on a freshly read state."""

    def __init__(self, error: TollboothError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class Written:
    mutation: Mutation  # as planned (a debit too wide for one transaction commits in steps)
    now: int  # the instant the plan computed it for
    # The account as committed, which a next write may start from; None when an intent's
    # roll-forward is left unfinished (the account must be read afresh: ``mutation``'s own
    # after-state describes steps not yet written, at the version of the first one).
    after: Account | None


@dataclass(frozen=True)
class _Again:
    """Plan again: after recalling slices (``recall``; None: every one), or on a fresh read."""

    recall: frozenset[int] | None = frozenset()
    fresh: bool = False


def _planned(plan: Plan, account: Account, now: int, fresh: bool) -> Mutation | _Again | None:
    """What ``plan`` decides (an outbox too long for the account item moved to a spill); a
    refusal on a fresh read raises Refused."""
    try:
        mutation = plan(account, now)
    except PoolNeeded as needed:
        return _Again(recall=None if needed.indexes is None else frozenset(needed.indexes))
    except TollboothError as refusal:
        if not fresh and isinstance(refusal, STATE_REFUSALS):
            return _Again(fresh=True)
        raise Refused(refusal) from refusal
    return None if mutation is None else spilling(mutation, now)


def _idle(account: Account, escrow: Escrow, now: int) -> bool:
    """Whether a recall of the slice would do nothing: it holds open holds alone, and the
    moment the account item records for it has not come (a recall moves that on). A slice
    not read with the account may hold anything."""
    due = escrow.due_at is not None and escrow.due_at <= now
    return not due and any(held.index == escrow.index and held.idle for held in account.slices)


class Writes:
    def __init__(
        self,
        store: LedgerStore,
        *,
        max_attempts: int = 10,
        now: Callable[[], int] = clock.now_ms,
        sleep: Callable[[float], None] = time.sleep,
        known: KnownAccounts | None = None,
        budget: float = WRITE_BUDGET_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.budget = budget
        self._monotonic = monotonic
        self._now = now
        self._sleep = sleep
        self._known = known if known is not None else KnownAccounts()

    def write(
        self,
        account_id: str,
        plan: Plan,
        *,
        on_conflict: ConflictHandler | None = None,
        start: Account | None = None,
        load: Loader | None = None,
        busy: str = "the account is busy; retry the request with the same Idempotency-Key",
        pool: bool = True,
        remember_as: str | None = None,
        on_race: RaceHandler | None = None,
        until: float | None = None,
        settled: Settled | None = None,
    ) -> Written | None:
        """Apply what ``plan`` decides, once; None if it decided there was nothing to write. ``start``
        and ``load``: another view of the account (the sweep's item alone, a slice), remembered only
        ``remember_as`` a key of its own; ``until``: the caller's deadline, if sooner; ``settled``: ends
        a lost race's wait early. Raises Refused, ConcurrentUpdate, or what the store or handlers raise."""
        known_as, remember = remember_as or account_id, load is None or remember_as is not None
        reload: Loader = load or self.store.load_account
        account = start if start is not None else (self._known.get(known_as) if remember else None)
        deadline = min(self._monotonic() + self.budget, math.inf if until is None else until)
        # Failures so far (a recall's or an intent's step is free); slices to recall (``pool``: all).
        attempt, wanted = 0, frozenset[int]()
        while attempt < self.max_attempts:
            fresh = account is None
            if account is None:
                account = reload(account_id)
                if account is None:
                    return None
            todo = self._to_recall(account, pool, wanted)
            if account.intent is not None or todo:
                # Roll an intent forward, or recall a slice, before anything is planned.
                account = self._finish(account) if account.intent is not None else self._recall(account, todo[0])
                attempt += account is None  # lost a race, or the partition is busy: wait, within the budget
                if account is None and not self._lost(True, attempt, deadline, None):
                    break
                continue
            now = self._now()
            mutation = _planned(plan, account, now, fresh)
            if isinstance(mutation, _Again):  # recall slices first, or (a remembered state refused) read afresh
                pool, wanted = pool or mutation.recall is None, wanted | (mutation.recall or frozenset())
                account, attempt = None if mutation.fresh else account, attempt + 1
                continue
            if mutation is None:
                return None
            first = fit(mutation, self.store.max_transaction_items)
            try:
                self.store.apply(first, now)
            except (WriteConflict, StoreBusy) as failed:
                account, attempt = None, attempt + 1
                if self._retry(failed, known_as, on_conflict, (fresh, attempt, deadline, on_race, settled)):
                    continue
                if isinstance(failed, StoreBusy):
                    raise
                break
            after = self._committed(first, mutation, known_as if remember else None)
            return Written(mutation, now, after)
        raise ConcurrentUpdate(busy)

    def _to_recall(self, account: Account, pool: bool, wanted: frozenset[int]) -> list[int]:
        """The slices to recall before planning: all (``pool``) or those ``wanted``, but for
        those a recall would leave as they are."""
        now = self._now()
        return [e.index for e in account.escrow if (pool or e.index in wanted) and not _idle(account, e, now)]

    def _committed(self, first: Mutation, mutation: Mutation, known_as: str | None) -> Account | None:
        """The account as committed (None: an intent left unfinished), remembered as ``known_as``."""
        audit.committed(mutation)
        # Committed. The draws an intent still owes are applied now; should that fail, the
        # next writer or the sweep finishes them.
        after = first.account_after if first.intent_after is None else self._finish_committed(first.account_after)
        if known_as is not None and after is not None:
            self._known.put(known_as, after)
        return after

    def _retry(
        self,
        failed: WriteConflict | StoreBusy,
        known_as: str,
        on_conflict: ConflictHandler | None,
        race: tuple[bool, int, float, RaceHandler | None, Settled | None],
    ) -> bool:
        """After a cancelled or throttled write: whether to go on. A throttled partition is
        waited for, within the budget, as after a lost race (it is not one: no slice moves)."""
        self._known.forget(known_as)
        fresh, attempt, deadline, on_race, settled = race
        if isinstance(failed, StoreBusy):
            return self._lost(True, attempt, deadline, None, settled)
        # A conflict that made progress (a replay, an event found charged) goes on.
        progressed = on_conflict is not None and on_conflict(failed)
        return progressed or self._lost(fresh, attempt, deadline, on_race, settled)

    def _lost(
        self, fresh: bool, attempt: int, deadline: float, on_race: RaceHandler | None, settled: Settled | None = None
    ) -> bool:
        """After a write that made no progress: whether to go on. A lost race (on a fresh
        read) waits, within the budget, or until ``settled`` says so. (A conflict that made
        progress, a replay or an event found charged, goes on however slow the store is.)"""
        if not fresh:
            return True
        if on_race is not None:
            on_race()
        if self._monotonic() > deadline:
            return False
        self._wait(self._backoff(attempt), settled)
        return True

    def _wait(self, seconds: float, settled: Settled | None) -> None:
        """Sleep ``seconds``; with ``settled``, look now and then meanwhile: the writer this
        one lost to may be doing what it was for."""
        if settled is None:
            self._sleep(seconds)
            return
        looks = max(1, min(WATCH_LOOKS, math.ceil(seconds / WATCH_SECONDS)))
        for _ in range(looks):
            self._sleep(seconds / looks)
            if settled(self._now()):
                return

    def _recall(self, account: Account, index: int) -> Account | None:
        """Recall slice ``index`` into the account's lots: the account after, or None when
        the write lost a race (the account is read again)."""
        if any(e.index not in {s.index for s in account.slices} for e in account.escrow):
            return self.store.load_account(account.account_id)  # a view without its slices
        self._known.forget(account.account_id)
        step = recall(account, index, self._now())
        try:
            self.store.apply(step, self._now())
        except (WriteConflict, StoreBusy):
            return None
        audit.committed(step)
        return step.account_after

    def _finish_committed(self, account: Account) -> Account | None:
        """Roll forward the intent of a mutation just committed: the account once it is
        finished, or None. A failure here is not the caller's: the next writer or the sweep
        finishes it."""
        try:
            return self._finish(account)
        except StorageUnavailable:
            return None

    def _finish(self, account: Account) -> Account | None:
        """Roll the account's intent forward to the end: the account after it, or None when
        another writer changed the account first (it then rolls forward itself)."""
        self._known.forget(account.account_id)
        while account.intent is not None:
            step = roll_forward(account, self.store.max_transaction_items)
            try:
                self.store.apply(step, self._now())
            except WriteConflict:
                return None
            account = step.account_after
        return account

    @staticmethod
    def _backoff(attempt: int) -> float:
        # Full jitter, capped: spreads contenders for one account apart.
        return random.uniform(0, min(0.2, 0.005 * 2**attempt))
