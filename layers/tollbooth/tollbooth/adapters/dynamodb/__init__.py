"""The data-access module: every DynamoDB read and write in Tollbooth goes through here.

Single-table design (docs/scale.md says more):

    pk                        sk                     item
    ACCOUNT#<id>              ACCOUNT                version, balance and lifetime totals
    ACCOUNT#<id>              ACCOUNT#INTENT         draws a large debit still owes
    ACCOUNT#<id>              ACCOUNT#LOT#<lot_id>   a lot that still holds credits
    ACCOUNT#<id>              LEDGER#<seq:012d>      ledger entry number <seq> (append-only)
    IDEMPOTENCY#<id>#<key>    IDEMPOTENCY            the first response to <key>, kept for good
    PAYMENT#<ref>             PAYMENT                which account and entry a payment granted

Reading an account is one consistent Query over the key range ACCOUNT to ACCOUNT~ (the
account item, its intent and its live lots). Writing is one TransactWriteItems whose
first item puts the account with a condition on its version, so every mutation of an
account is serialized and entry numbers have no gaps.

The account item also carries what the expiry sweep needs, so that finding and
writing off due lots reads one item per account: a summary of its soonest-due live
expiring lots, its outbox of unpublished events, and, while it has any of those, the
keys of the sparse ``ExpiryIndex`` (``expiry_shard``, ``next_due_at``). The sweep
queries each shard for ``next_due_at <= now``: work proportional to what is due.
"""

from tollbooth.adapters.dynamodb.store import Repository
from tollbooth.adapters.keys import Keys

__all__ = ["Keys", "Repository"]
