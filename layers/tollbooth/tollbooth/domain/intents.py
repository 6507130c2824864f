"""Changes larger than one transaction: the one exception to "one transaction per mutation".

DynamoDB takes at most 100 items in a transaction (some DynamoDB Local builds, 10). A
change with more lot changes than fit (a debit drawing from many lots; a hold's release
giving credits back to many) is written as:

1. one transaction with everything the client sees (the account's totals and version, the
   ledger entry, the idempotency records, events, a hold) and the lot changes that fit,
   plus an ``Intent`` item that lists the rest: draws still owed, credits still going back
   into lots, lots still to be made again;
2. then, a chunk of them per transaction, each guarded by the account version, until the
   intent is gone.

The change is committed, exactly once, at step 1: a replay returns its answer, and the
balance already shows it. Until the intent is gone, the lots it names hold what they
should not (credits spent, or not yet back), so nothing else is planned on the account:
every writer (the write loop) rolls an intent forward before it plans, and the account
stays due in the expiry index so that the sweep finishes what a crashed writer left. Owed
draws are guarded like a rollover's transfers (enough left in the lot, expired or not):
they were spendable when the change was committed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from tollbooth.domain.ledger import Account, Intent, Mutation

# The account item, and the intent item a roll-forward rewrites or deletes.
ROLL_FORWARD_OVERHEAD = 2

T = TypeVar("T")


def fit(mutation: Mutation, max_items: int) -> Mutation:
    """``mutation`` as its first transaction: unchanged when it fits in ``max_items``;
    otherwise with the lot changes that do not fit (draws, then rollover transfers, then
    credits going back into lots, then lots made again) moved into an intent. A mutation
    whose other items alone do not fit is returned as it is (the store refuses it:
    ChangeTooLarge)."""
    if mutation.transaction_items <= max_items or mutation.account.intent is not None:
        return mutation
    made = tuple(lot for lot in mutation.new_lots if lot.remaining > 0)
    movable = len(mutation.draws) + len(mutation.transfers) + len(mutation.returns) + len(made)
    room = max_items - (mutation.transaction_items - movable + 1)  # + the intent item
    if room < 0 or not mutation.entries:
        return mutation
    draws, room = _split(mutation.draws, room)
    transfers, room = _split(mutation.transfers, room)
    returns, room = _split(mutation.returns, room)
    kept_made, room = _split(made, room)
    intent = Intent(
        entry_id=mutation.entries[0].entry_id,
        draws=mutation.draws[len(draws) :] + mutation.transfers[len(transfers) :],
        returns=mutation.returns[len(returns) :],
        remade=made[len(kept_made) :],
    )
    unwritten = tuple(lot for lot in mutation.new_lots if lot.remaining == 0)  # kept: they mark plan periods
    return replace(
        mutation,
        draws=draws,
        transfers=transfers,
        returns=returns,
        new_lots=kept_made + unwritten,
        intent_after=intent,
    )


def roll_forward(account: Account, max_items: int) -> Mutation:
    """The next transaction of the account's intent: as many owed changes as fit, and the
    intent rewritten with the rest, or deleted with the last of them."""
    intent = account.intent
    assert intent is not None, "only an account with an intent rolls forward"
    room = max(1, max_items - ROLL_FORWARD_OVERHEAD)
    draws, room = _split(intent.draws, room)
    returns, room = _split(intent.returns, room)
    remade, room = _split(intent.remade, room)
    rest = Intent(
        intent.entry_id, intent.draws[len(draws) :], intent.returns[len(returns) :], intent.remade[len(remade) :]
    )
    left = rest.draws or rest.returns or rest.remade
    return Mutation(account, transfers=draws, returns=returns, new_lots=remade, intent_after=rest if left else None)


def _split(changes: tuple[T, ...], room: int) -> tuple[tuple[T, ...], int]:
    """The first of ``changes`` that fit in ``room`` items, and the room left."""
    kept = changes[: max(0, room)]
    return kept, room - len(kept)
