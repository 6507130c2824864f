"""Debits larger than one transaction: the one exception to "one transaction per mutation".

DynamoDB takes at most 100 items in a transaction (some DynamoDB Local builds, 10). A debit
that draws from more lots than fit is written as:

1. one transaction with everything the client sees (the account's totals and version, the
   ledger entry, the idempotency records, events) and the draws that fit, plus an
   ``Intent`` item that lists the draws still owed;
2. then, a chunk of owed draws per transaction, each guarded by the account version,
   until the intent is gone.

The debit is committed, exactly once, at step 1: a replay returns its answer, and the
balance already shows it. Until the intent is gone, the lots it names still hold credits
that are spent, so nothing else is planned on the account: every writer (the write loop)
rolls an intent forward before it plans, and the account stays due in the expiry index
so that the sweep finishes what a crashed writer left. Owed draws are guarded like a
rollover's transfers (enough left in the lot, expired or not): they were spendable when
the debit was committed.
"""

from __future__ import annotations

from dataclasses import replace

from tollbooth.domain.ledger import Account, Intent, Mutation

# The account item, and the intent item a roll-forward rewrites or deletes.
ROLL_FORWARD_OVERHEAD = 2


def fit(mutation: Mutation, max_items: int) -> Mutation:
    """``mutation`` as its first transaction: unchanged when it fits in ``max_items``;
    otherwise with the draws that do not fit moved into an intent. A mutation whose other
    items alone do not fit is returned as it is (the store refuses it: ChangeTooLarge)."""
    if mutation.transaction_items <= max_items or mutation.account.intent is not None:
        return mutation
    owed = mutation.draws + mutation.transfers
    fixed = mutation.transaction_items - len(owed) + 1  # + the intent item
    room = max_items - fixed
    if room < 0 or not mutation.entries:
        return mutation
    kept_draws = mutation.draws[:room]
    kept_transfers = mutation.transfers[: room - len(kept_draws)]
    pending = mutation.draws[len(kept_draws) :] + mutation.transfers[len(kept_transfers) :]
    intent = Intent(entry_id=mutation.entries[0].entry_id, draws=pending)
    return replace(mutation, draws=kept_draws, transfers=kept_transfers, intent_after=intent)


def roll_forward(account: Account, max_items: int) -> Mutation:
    """The next transaction of the account's intent: as many owed draws as fit, and the
    intent rewritten with the rest, or deleted with the last of them."""
    intent = account.intent
    assert intent is not None, "only an account with an intent rolls forward"
    room = max(1, max_items - ROLL_FORWARD_OVERHEAD)
    chunk, rest = intent.draws[:room], intent.draws[room:]
    return Mutation(account, transfers=chunk, intent_after=replace(intent, draws=rest) if rest else None)
