"""An account's outbox: events committed with a change, published after it.

Publishing happens only after the change is committed, and the outbox is emptied only
after publishing succeeded, under the version guard. A crash in between publishes the
same events again (same ids): consumers deduplicate. An outbox that is not empty keeps
the account due in the expiry index, so the sweep publishes whatever was left behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tollbooth.app.ports import LedgerStore, Publisher
from tollbooth.app.writes import Plan, Writes, Written
from tollbooth.domain.ledger import Account, Mutation
from tollbooth.observability import logger

# How long a request spends publishing its events after its change is committed, before it
# leaves them to the sweep (the answer is already decided).
PUBLISH_SECONDS = 1.0
# After a failure to publish, how long a container leaves requests' events to the sweep:
# while EventBridge is down, one request in that time waits out its timeouts, not each.
PAUSE_SECONDS = 30.0
# Spills (``domain.outbox_state``) one write publishes and deletes: a request, after an
# outage, publishes the oldest one (41 events, 5 PutEvents calls) and leaves the rest to
# the sweep, which takes them some 1,000 events (about 100 calls) a write.
SPILLS_PER_REQUEST = 1
SPILLS_PER_SWEEP_WRITE = 24


def flush(publisher: Publisher, store: LedgerStore, spills: int) -> Plan:
    """A plan for the write loop: publish the account's pending events, oldest first, then
    remove them (publishing raises if it fails: nothing is lost, the events stay). Spills
    (``domain.outbox_state``) go first, at most ``spills`` of them (and as many as one
    transaction deletes); the account item's own events once no spill is left before them."""

    def plan(account: Account, now: int) -> Mutation | None:
        if not account.pending_events and not account.spilled:
            return None
        keys = tuple(ref.key for ref in account.spilled[: min(spills, store.max_transaction_items - 1)])
        events = store.load_spilled(account.account_id, keys) if keys else ()
        last = len(keys) == len(account.spilled)
        publisher.publish(events + account.pending_events if last else events)
        return Mutation(account, pending_events=() if last else None, unspilled=keys)

    return plan


class AfterCommit:
    """Publishes the events a committed request added to the account's outbox, and empties
    it, at once: left there, they would ride on every write of the account item until the
    sweep's next run. Best effort: on any failure they stay for the sweep."""

    def __init__(
        self,
        writes: Writes,
        store: LedgerStore,
        publisher: Publisher,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writes = writes
        self._store = store
        self._flush = flush(publisher, store, SPILLS_PER_REQUEST)
        self._monotonic = monotonic
        self._paused_until = 0.0

    def publish(self, account_id: str, written: Written, *, whole: bool) -> None:
        """After a request: publish the events it added, if any. ``whole``: the change was
        computed from the whole account (else the account is read afresh: a state remembered
        from before the change would find nothing to do)."""
        mutation = written.mutation
        after = mutation.pending_events
        if mutation.spill is None and (after is None or len(after) <= len(mutation.account.pending_events)):
            return  # the request added no event (what was left before waits for the sweep)
        self.empty(account_id, written.after if whole else None)

    def empty(self, account_id: str, account: Account | None) -> None:
        """Publish the account's outbox and empty it, from ``account`` as a commit left it
        (None: read afresh)."""
        if self._monotonic() < self._paused_until:
            return
        # Emptying the outbox leaves the account's escrow slices as they are.
        options: dict[str, Any] = {"pool": False, "until": self._monotonic() + PUBLISH_SECONDS}
        options |= {"start": account} if account is not None else {"load": self._store.load_account}
        try:
            self._writes.write(account_id, self._flush, **options)
        except Exception:
            self._paused_until = self._monotonic() + PAUSE_SECONDS
            logger.exception("outbox left for the sweep", extra={"account_id": account_id})
