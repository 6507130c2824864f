"""How a mutation's lot and payment changes become DynamoDB updates and deletes, each with
its guard (for the store's one transaction), and how a change of one item alone is written."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from tollbooth.adapters.dynamodb.errors import single_conflict_of
from tollbooth.adapters.dynamodb.items import IdempotencyItem, IntentItem, LotItem, PaymentItem, SpillItem
from tollbooth.adapters.keys import Keys
from tollbooth.app.ports import WriteConflict
from tollbooth.domain.ledger import Mutation
from tollbooth.domain.unsettled import Settlement

Puts = list[tuple[Model, Any, str]]
Updates = list[tuple[Model, list[Any], Any]]
Deletes = list[tuple[Model, Any]]


def lot_changes(mutation: Mutation, settled: Settlement, now: int) -> tuple[Updates, Deletes]:
    """Each lot item the mutation changes (``adapters.unsettled``: a draw is kept on the
    account item until the lot's item is written anyway), with its guard: a draw only from
    what is left of an unexpired lot; a rollover's transfer (or an intent's owed draw) from
    a lot that may have just expired; a write-off of exactly what is left, once the lot has
    expired; a warning flag. A change that takes a lot's last credit deletes it, guarded by
    exactly what is left. An intent the mutation finishes is deleted."""
    pk = Keys.account(mutation.account.account_id)
    guards = {
        "draw": LotItem.expires_at.does_not_exist() | (LotItem.expires_at > now),
        "transfer": None,
        "expire": LotItem.expires_at <= now,
    }
    updates: list[tuple[Model, list[Any], Any]] = []
    deletes: list[tuple[Model, Any]] = []
    for write in settled.writes:
        lot, when = LotItem(pk, Keys.lot(write.lot_id)), guards[write.guard]
        if write.deletes:
            exact = LotItem.remaining == write.amount
            deletes.append((lot, exact if when is None else exact & when))
        else:
            enough = LotItem.remaining >= write.amount
            updates.append((lot, [LotItem.remaining.add(-write.amount)], enough if when is None else enough & when))
    updates += [
        (LotItem(pk, Keys.lot(lot_id)), [LotItem.warned.set(True)], LotItem.pk.exists()) for lot_id in mutation.warned
    ]
    updates += [(LotItem(pk, Keys.lot(i)), [LotItem.frozen.set(True)], LotItem.pk.exists()) for i in mutation.frozen]
    updates += [(LotItem(pk, Keys.lot(i)), [LotItem.frozen.remove()], LotItem.pk.exists()) for i in mutation.unfrozen]
    # A recall puts a slice's credits back into lots still in the store (under the version guard).
    updates += [
        (LotItem(pk, Keys.lot(r.lot_id)), [LotItem.remaining.add(r.amount)], LotItem.pk.exists())
        for r in mutation.returns
    ]
    if mutation.account.intent is not None and mutation.intent_after is None:
        deletes.append((IntentItem(pk, Keys.INTENT_SK), None))
    return updates, deletes


def spill_changes(mutation: Mutation) -> tuple[Puts, Deletes]:
    """An outbox moved off the account item, put as an item of its own; spills published,
    deleted (each guarded by being there: the account's version guards them besides)."""
    pk = Keys.account(mutation.account.account_id)
    spill = mutation.spill
    puts: Puts = []
    if spill is not None:
        item = SpillItem(pk, Keys.spill(spill.key), events=list(spill.events))
        puts.append((item, SpillItem.pk.does_not_exist(), WriteConflict.VERSION))
    return puts, [(SpillItem(pk, Keys.spill(key)), SpillItem.pk.exists()) for key in mutation.unspilled]


def payment_changes(mutation: Mutation) -> list[tuple[Model, list[Any], Any]]:
    """A refund raises the payment's refunded total, guarded by what it was (so that two
    refunds of one payment never both count what only one may)."""
    refund = mutation.refund
    if refund is None:
        return []
    was = PaymentItem.refunded_minor == refund.before_minor
    if refund.before_minor == 0:
        was = PaymentItem.refunded_minor.does_not_exist() | was
    actions = [PaymentItem.refunded_minor.set(refund.after_minor)]
    if refund.dispute is not None:  # a dispute's transition, guarded by the status it leaves
        before, after = refund.dispute
        was &= PaymentItem.dispute.does_not_exist() if before is None else PaymentItem.dispute == before
        actions.append(PaymentItem.dispute.set(after))
    payment = PaymentItem(Keys.payment(refund.reference), Keys.PAYMENT_SK)
    return [(payment, actions, PaymentItem.pk.exists() & was)]


def write_one(puts: Puts, updates: Updates, deletes: Deletes) -> None:
    """A mutation that changes one item (an outbox emptied, a slice hold's events marked
    published) is one conditional PutItem, UpdateItem or DeleteItem: as atomic as a
    transaction of that item, at half its write units (1 per KB, not 2)."""
    meaning, key = WriteConflict.VERSION, None
    try:
        if puts:
            ((item, condition, meaning),) = puts
            key = item.key if isinstance(item, IdempotencyItem) else None
            item.save(condition=condition)
        elif updates:
            ((item, actions, condition),) = updates
            item.update(actions=actions, condition=condition)
        else:
            ((item, condition),) = deletes
            item.delete(condition=condition)
    except PynamoDBException as error:
        raise single_conflict_of(error, meaning, key) from error
