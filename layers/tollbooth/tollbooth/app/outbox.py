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


def flush(publisher: Publisher) -> Plan:
    """A plan for the write loop: publish the account's pending events, then empty its
    outbox (publishing raises if it fails: nothing is lost, the events stay)."""

    def plan(account: Account, now: int) -> Mutation | None:
        if not account.pending_events:
            return None
        publisher.publish(account.pending_events)
        return Mutation(account, pending_events=())

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
        self._flush = flush(publisher)
        self._monotonic = monotonic
        self._paused_until = 0.0

    def publish(self, account_id: str, written: Written, *, whole: bool) -> None:
        """After a request: publish the events it added, if any. ``whole``: the change was
        computed from the whole account (else the account is read afresh: a state remembered
        from before the change would find nothing to do)."""
        mutation = written.mutation
        if mutation.pending_events is None or len(mutation.pending_events) <= len(mutation.account.pending_events):
            return  # the request added no event (what was left before waits for the sweep)
        self.empty(account_id, mutation.account_after if whole else None)

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
