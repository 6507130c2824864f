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
  forward before anything is planned on it (``domain.intents``).
"""

from __future__ import annotations

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
    TollboothError,
)
from tollbooth.domain.intents import fit, roll_forward
from tollbooth.domain.ledger import Account, Mutation

# Refusals that depend on the account's state: a remembered state is re-read before refusing.
STATE_REFUSALS = (InsufficientCredits, FeatureLocked, InvalidPeriod)

# How long a request keeps retrying a busy account, inside the function's 10 s timeout.
WRITE_BUDGET_SECONDS = 5.0

Plan = Callable[[Account, int], Mutation | None]
# Told of each cancelled write; True when the use case made progress from it (no backoff).
ConflictHandler = Callable[[WriteConflict], bool]
Loader = Callable[[str], Account | None]


class Refused(Exception):
    """The plan refused the change (a domain error), on a freshly read state."""

    def __init__(self, error: TollboothError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class Written:
    mutation: Mutation
    now: int  # the instant the plan computed it for


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
    ) -> Written | None:
        """Apply what ``plan`` decides, once; None if it decided there was nothing to write.

        ``start`` and ``load`` give another view of the account (the sweep's account item
        alone); such views are never remembered. Raises Refused, ConcurrentUpdate, or what
        the store or ``on_conflict`` raise."""
        remember = load is None
        reload: Loader = load or self.store.load_account
        account = start if start is not None else (self._known.get(account_id) if remember else None)
        deadline = self._monotonic() + self.budget
        for attempt in range(self.max_attempts):
            fresh = account is None
            if account is None:
                account = reload(account_id)
                if account is None:
                    return None
            if account.intent is not None:
                account = self._finish(account)
                continue
            now = self._now()
            try:
                mutation = plan(account, now)
            except TollboothError as refusal:
                if not fresh and isinstance(refusal, STATE_REFUSALS):
                    account = None
                    continue
                raise Refused(refusal) from refusal
            if mutation is None:
                return None
            first = fit(mutation, self.store.max_transaction_items)
            try:
                self.store.apply(first, now)
            except WriteConflict as conflict:
                self._known.forget(account_id)
                account = None
                progressed = on_conflict(conflict) if on_conflict is not None else False
                if fresh and not progressed:
                    # A lost race: wait, within the budget. (A conflict that made progress, a
                    # replay or an event found charged, goes on however slow the store is.)
                    if self._monotonic() > deadline:
                        break
                    self._backoff(attempt)
                continue
            audit.committed(mutation)
            # Committed. The draws an intent still owes are applied now; should that fail,
            # the next writer or the sweep finishes them.
            finished = first.intent_after is None or self._finish_committed(first.account_after)
            if remember and finished:
                self._known.put(account_id, mutation.account_after)
            return Written(mutation, now)
        raise ConcurrentUpdate(busy)

    def _finish_committed(self, account: Account) -> bool:
        """Roll forward the intent of a mutation just committed: whether it is finished. A
        failure here is not the caller's: the next writer or the sweep finishes it."""
        try:
            return self._finish(account) is not None
        except StorageUnavailable:
            return False

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

    def _backoff(self, attempt: int) -> None:
        # Full jitter, capped: spreads contenders for one account apart.
        self._sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
