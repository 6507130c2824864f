"""An account's outbox: events committed with a change, published after it.

Publishing happens only after the change is committed, and the outbox is emptied only
after publishing succeeded, under the version guard. A crash in between publishes the
same events again (same ids): consumers deduplicate. An outbox that is not empty keeps
the account due in the expiry index, so the sweep publishes whatever was left behind.
"""

from __future__ import annotations

from tollbooth.app.ports import Publisher
from tollbooth.app.writes import Plan
from tollbooth.domain.ledger import Account, Mutation


def flush(publisher: Publisher) -> Plan:
    """A plan for the write loop: publish the account's pending events, then empty its
    outbox (publishing raises if it fails: nothing is lost, the events stay)."""

    def plan(account: Account, now: int) -> Mutation | None:
        if not account.pending_events:
            return None
        publisher.publish(account.pending_events)
        return Mutation(account, pending_events=())

    return plan
