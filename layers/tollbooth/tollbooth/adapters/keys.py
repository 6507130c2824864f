"""The one place that spells the table's keys, for the DynamoDB adapter and its in-memory twin."""

from __future__ import annotations

import hashlib

from tollbooth.domain import ids

ENTRY_SEQ_DIGITS = 12


class Keys:
    """The one place that spells keys."""

    @staticmethod
    def account(account_id: str) -> str:
        return f"ACCOUNT#{account_id}"

    ACCOUNT_SK = "ACCOUNT"
    INTENT_SK = "ACCOUNT#INTENT"  # read with the account and its lots, in one Query
    # The account item, its lots and its intent sort from ACCOUNT_SK up to here ('~' sorts
    # after '#'): a key range, which every engine seeks, where begins_with may scan.
    ACCOUNT_RANGE_END = "ACCOUNT~"
    LOT_PREFIX = "ACCOUNT#LOT#"
    LEDGER_PREFIX = "LEDGER#"

    @staticmethod
    def lot(lot_id: str) -> str:
        return f"{Keys.LOT_PREFIX}{lot_id}"

    @staticmethod
    def entry(seq: int) -> str:
        return f"{Keys.LEDGER_PREFIX}{seq:0{ENTRY_SEQ_DIGITS}d}"

    @staticmethod
    def slice(account_id: str, index: int) -> str:
        """An escrow slice's partition: its item, and the entries its consumes write."""
        return f"ACCOUNT#{account_id}#SLICE#{index:03d}"

    SLICE_SK = "SLICE"

    @staticmethod
    def stream(account_id: str, index: int | None) -> str:
        """The partition that holds a stream of entries: the account's own (None), or a slice's."""
        return Keys.account(account_id) if index is None else Keys.slice(account_id, index)

    @staticmethod
    def idempotency(account_id: str, key: str) -> tuple[str, str]:
        """An idempotency record's (pk, sk): a partition of its own, so that the records an
        account writes (one per request, one per usage event) do not load its partition."""
        return f"IDEMPOTENCY#{account_id}#{key}", Keys.IDEMPOTENCY_SK

    IDEMPOTENCY_SK = "IDEMPOTENCY"

    @staticmethod
    def payment(reference: str) -> str:
        return f"PAYMENT#{reference}"

    PAYMENT_SK = "PAYMENT"

    HOLD_PREFIX = "HOLD#"

    @staticmethod
    def hold(account_id: str, hold_id: str) -> tuple[str, str]:
        """A hold's (pk, sk): in the partition of the slice it was placed on (its id says
        which, ``ids.hold_slice``), else the account's, outside the range a load reads."""
        return Keys.stream(account_id, ids.hold_slice(hold_id)), f"{Keys.HOLD_PREFIX}{hold_id}"

    @staticmethod
    def spill(key: str) -> str:
        """The sort key, in the account's partition (outside the range a load reads), of an
        outbox moved off the account item (``domain.outbox_state``)."""
        return f"OUTBOX#{key}"

    @staticmethod
    def reversal(charge: str) -> str:
        """The sort key, in the account's partition (outside the range a load reads), of what
        a charge has had reversed: ``charge`` is its entry_id, and a usage record's event_id."""
        return f"REVERSAL#{charge}"

    @staticmethod
    def expiry_shard_key(shard: int) -> str:
        return f"EXPIRY#{shard:03d}"

    @staticmethod
    def expiry_shard(account_id: str, shards: int) -> str:
        """The expiry index partition an account's item goes to (a hash spreads them)."""
        digest = hashlib.sha256(account_id.encode()).digest()
        return Keys.expiry_shard_key(int.from_bytes(digest[:4], "big") % shards)
