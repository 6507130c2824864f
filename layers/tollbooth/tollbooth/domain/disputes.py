"""Disputes (chargebacks) of a payment: opened, then won or lost, each transition once.

- ``opened`` freezes what is left of the payment's lots: the credits stay in the balance
  (shown as ``frozen``), but cannot be spent or moved into a slice.
- ``won`` frees them.
- ``lost`` claws the payment's credits back as a refund of all that is left to refund does
  (``domain.refunds``: what the lots hold is taken, what was spent follows the package's
  refund policy), and counts toward the payment's refund cap.

The payment's item records the dispute's status; each transition is guarded by the status
it leaves, so it happens once however deliveries race. Deliveries that come late or twice
change nothing and say so: ``opened`` after the dispute was decided, a second ``won``, a
second ``lost``. A decision that arrives before its ``opened`` is taken as it stands
(``won``: nothing was frozen; ``lost``: the claw-back). A ``won`` after ``lost`` (or the
reverse) contradicts a decision: refused (409 ``dispute_decided``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from tollbooth.domain.claims import told_slices
from tollbooth.domain.errors import DisputeDecided
from tollbooth.domain.events import dispute_event
from tollbooth.domain.ledger import Account, Mutation, PaymentRefund, next_entry
from tollbooth.domain.refunds import Payment, RefundPolicy, RefundRequest, refund_mutation

DisputeStatus = Literal["opened", "won", "lost"]
DECIDED = ("won", "lost")


@dataclass(frozen=True)
class DisputeRequest:
    status: DisputeStatus
    reason: str
    actor: str


def changes(current: str | None, status: DisputeStatus) -> bool:
    """Whether ``status`` moves a dispute that stands at ``current`` (raises on a contradiction)."""
    if current == status or (status == "opened" and current is not None):
        return False  # a late or repeated delivery
    if current in DECIDED:
        raise DisputeDecided(f"the dispute of this payment was {current}; it cannot now be {status}")
    return True


def dispute_mutation(
    account: Account,
    payment: Payment,
    asked: DisputeRequest,
    policy: RefundPolicy,
    now: int,
    key: str,
    caller: Mapping[str, str],
) -> Mutation | None:
    """The transition's mutation, or None when the delivery changes nothing."""
    if not changes(payment.dispute, asked.status):
        return None
    held = {lot.lot_id: lot for lot in account.lots}
    mine = [held[lot.lot_id] for lot in payment.lots if lot.lot_id in held]
    transition = (payment.dispute, asked.status)
    if asked.status == "lost":
        return _lost(account, payment, asked, policy, now, key, caller, [lot.lot_id for lot in mine if lot.frozen])
    details: dict[str, Any] = {
        "payment_reference": payment.reference,
        "payment_entry_id": payment.entry_id,
        "status": asked.status,
        "frozen_credits": sum(lot.remaining for lot in mine) if asked.status == "opened" else 0,
        "unfrozen_credits": sum(lot.remaining for lot in mine if lot.frozen) if asked.status == "won" else 0,
        "reason": asked.reason,
        "actor": asked.actor,
        "caller": dict(caller),
    }
    entry = next_entry(account, "dispute", 0, now, key, details)
    opened = asked.status == "opened"
    return with_disputed(
        Mutation(
            account,
            (entry,),
            frozen=tuple(lot.lot_id for lot in mine if opened and not lot.frozen),
            unfrozen=tuple(lot.lot_id for lot in mine if not opened and lot.frozen),
            refund=PaymentRefund(payment.reference, payment.refunded_minor, payment.refunded_minor, transition),
            pending_events=(*account.pending_events, dispute_event(account.account_id, entry, now)),
        ),
        payment,
        opened,
    )


def with_disputed(mutation: Mutation, payment: Payment, opened: bool) -> Mutation:
    """``mutation`` recording the payment's lots as under dispute (``opened``) or no longer,
    on the account and on each slice holding open holds (whose credits may come from them):
    credits that come back from holds into those lots come back frozen."""
    account = mutation.account
    mine = {lot.lot_id for lot in payment.lots}
    disputed = tuple(sorted(set(account.disputed) | mine if opened else set(account.disputed) - mine))
    return told_slices(replace(mutation, disputed=disputed))


def _lost(
    account: Account,
    payment: Payment,
    asked: DisputeRequest,
    policy: RefundPolicy,
    now: int,
    key: str,
    caller: Mapping[str, str],
    frozen: list[str],
) -> Mutation:
    """A lost dispute: a refund of all that is left, entered as the dispute's, its lots freed."""
    transition = (payment.dispute, "lost")
    if payment.paid_minor - payment.refunded_minor <= 0:  # refunded in full already: nothing to claw
        details = {"payment_reference": payment.reference, "status": "lost", "clawed_back": 0, "unrecovered": 0}
        details |= {"reason": asked.reason, "actor": asked.actor, "caller": dict(caller)}
        entry = next_entry(account, "dispute", 0, now, key, details)
        refund = PaymentRefund(payment.reference, payment.refunded_minor, payment.refunded_minor, transition)
        events = (*account.pending_events, dispute_event(account.account_id, entry, now))
        done = Mutation(account, (entry,), unfrozen=tuple(frozen), refund=refund, pending_events=events)
        return with_disputed(done, payment, opened=False)
    clawed = refund_mutation(account, payment, RefundRequest(None, asked.reason, asked.actor), policy, now, key, caller)
    refund_entry = clawed.entries[0]
    entry = replace(refund_entry, kind="dispute", details={**refund_entry.details, "status": "lost"})
    assert clawed.refund is not None
    taken = {transfer.lot_id for transfer in clawed.transfers}  # a full claw-back empties them
    lost = replace(
        clawed,
        entries=(entry,),
        unfrozen=tuple(lot_id for lot_id in frozen if lot_id not in taken),
        refund=replace(clawed.refund, dispute=transition),
        pending_events=(*account.pending_events, dispute_event(account.account_id, entry, now)),
    )
    return with_disputed(lost, payment, opened=False)
