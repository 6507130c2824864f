"""The rule that keeps the account item's outbox short (``domain.outbox_state``)."""

from __future__ import annotations

from dataclasses import replace

from tollbooth.domain import ids
from tollbooth.domain.ledger import Account, Mutation
from tollbooth.domain.outbox_state import Spill

# Events the account item carries before a change moves them to a spill: at about 500
# bytes an event, some 20 KB, where a busy account's outbox through a long outage would
# otherwise reach DynamoDB's 400 KB item limit (about 800 events) and stop its writes.
ON_ITEM = 40


def spilling(mutation: Mutation, now: int) -> Mutation:
    """``mutation``, its outbox moved to a spill when it would leave more than ``ON_ITEM``
    events on the account item (the write loop applies this to every change)."""
    after = mutation.pending_events
    if after is None or len(after) <= ON_ITEM:
        return mutation
    return replace(mutation, pending_events=(), spill=Spill(ids.new_id("outbox", now), after))


def unpublished(account: Account) -> int:
    """The events waiting to be published: on the account item and in its spills."""
    return len(account.pending_events) + sum(ref.events for ref in account.spilled)
