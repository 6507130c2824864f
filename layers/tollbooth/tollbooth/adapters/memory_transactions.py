"""One transaction of the in-memory twin: its items, their guards, and what a failed guard
means, as the DynamoDB Repository checks and reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tollbooth.adapters.keys import Keys
from tollbooth.adapters.memory_items import Item, stored_item
from tollbooth.app.ports import WriteConflict
from tollbooth.domain.ledger import Mutation

VERSION = WriteConflict.VERSION

Key = tuple[str, str]


@dataclass(frozen=True)
class Operation:
    """One item of a transaction: its guard, and the item a put writes (None: an update)."""

    key: Key
    # absent | version | reversed | status:<a hold's> | draw | transfer | expire | return | freeze | unfreeze
    # | exists | none
    guard: str
    meaning: str  # what a failed guard means, as the Repository reads its cancellation reasons
    item: Item | None = None
    amount: int = 0  # the version to match, or the credits an update moves
    deletes: bool = False  # the lot's last credit (guarded by exactly what is left), or the intent
    refunded: int = 0  # a payment's refunded total after a refund (guarded by ``amount``, before)
    dispute: tuple[str | None, str] | None = None  # a payment's dispute status, before and after


def spill_operations(mutation: Mutation) -> list[Operation]:
    """An outbox moved off the account item, put as an item of its own; spills published,
    deleted (each guarded by being there), as the Repository's ``spill_changes``."""
    pk = Keys.account(mutation.account.account_id)
    ops = [Operation((pk, Keys.spill(key)), "exists", VERSION, deletes=True) for key in mutation.unspilled]
    if (spill := mutation.spill) is not None:
        item = stored_item(pk, Keys.spill(spill.key), "outbox", events=json.dumps(list(spill.events)))
        ops.append(Operation((pk, item["sk"]), "absent", VERSION, item))
    return ops


def passes(op: Operation, current: Item | None, now: int) -> bool:
    if op.guard == "none":
        return True
    if op.guard == "absent":
        return current is None
    if op.guard.startswith("status:"):  # a hold, as it was read
        return current is not None and current.get("status") == op.guard.removeprefix("status:")
    if op.guard == "reversed":  # a charge's reversed total, as it was read
        return current is None if op.amount == 0 else current is not None and current.get("reversed") == op.amount
    if current is None:
        return False
    remaining, expires_at = current.get("remaining"), current.get("expires_at")
    if op.guard == "version":
        return bool(current.get("version") == op.amount)
    if op.guard == "refunded":
        disputed = op.dispute is None or current.get("dispute") == op.dispute[0]
        return bool(current.get("refunded_minor", 0) == op.amount) and disputed
    enough = remaining is not None and (remaining == op.amount if op.deletes else remaining >= op.amount)
    if op.guard == "draw":
        return enough and (expires_at is None or expires_at > now)
    if op.guard == "transfer":
        return enough
    if op.guard == "expire":
        return enough and expires_at is not None and expires_at <= now
    return True  # exists


def written(op: Operation, current: Item | None) -> Item | None:
    """The item once the operation commits (None: it is deleted)."""
    if op.deletes:
        return None
    if op.item is not None:
        return op.item
    assert current is not None, "every update's guard needs the item"
    if op.guard in ("draw", "transfer"):
        return {**current, "remaining": current["remaining"] - op.amount}
    if op.guard == "return":  # a recall puts a slice's credits back
        return {**current, "remaining": current["remaining"] + op.amount}
    if op.guard == "refunded":
        dispute = {} if op.dispute is None else {"dispute": op.dispute[1]}
        return {**current, "refunded_minor": op.refunded, **dispute}
    if op.guard in ("freeze", "unfreeze"):  # a dispute's: the flag is absent while false
        flagged = {key: value for key, value in current.items() if key != "frozen"}
        return {**flagged, "frozen": True} if op.guard == "freeze" else flagged
    return {**current, "warned": True}


def conflict_of(ops: list[Operation], failed_at: list[int], keys: list[str]) -> WriteConflict:
    """As the Repository's ``_conflict`` reads the cancellation reasons (the account comes first,
    then one idempotency record per key, in order)."""
    failed = {ops[i].meaning for i in failed_at}
    if WriteConflict.IDEMPOTENCY_KEY in failed:
        return WriteConflict(WriteConflict.IDEMPOTENCY_KEY, {keys[i - 1] for i in failed_at if 1 <= i <= len(keys)})
    if WriteConflict.PAYMENT_REFERENCE in failed:
        return WriteConflict(WriteConflict.PAYMENT_REFERENCE)
    return WriteConflict(VERSION)
