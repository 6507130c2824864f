"""An account's outbox: events committed with a change, published after it.

Publishing happens only after the change is committed, and the outbox is emptied only
after publishing succeeded, under the version guard. A crash in between publishes the
same events again (same ids): consumers deduplicate. An outbox that is not empty keeps
the account due in the expiry index, so the sweep publishes whatever was left behind.
"""

from __future__ import annotations

from tollbooth.app.ports import LedgerStore, Publisher
from tollbooth.domain.ledger import Account, Mutation


def flush_outbox(repository: LedgerStore, publisher: Publisher, account: Account, now: int) -> Account:
    """Publish the account's pending events, then empty its outbox; the state afterwards.

    Raises StorageUnavailable if publishing fails, or WriteConflict if the account changed
    meanwhile; either way nothing is lost."""
    if not account.pending_events:
        return account
    publisher.publish(account.pending_events)
    mutation = Mutation(account, pending_events=())
    repository.apply(mutation, now)
    return mutation.account_after
