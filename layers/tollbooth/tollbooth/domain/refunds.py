"""Refunds: money back for a payment, and the credits it granted clawed back.

A refund of ``amount_minor`` takes the payment's refunded total from R to R' (never past
what it paid, P). Each lot the payment granted (the bonus lots too) owes back, in all,
``floor(granted x R / P)`` credits once R has been refunded; this refund claws back the
difference between that at R' and at R. Computed cumulatively, two refunds of half equal
one full refund, and a full refund claws back exactly what was granted. Rounding down
favours the customer by under a millicredit per lot, until the last refund.

What a lot still holds is taken at once (expired or not: it would only be written off).
What it no longer holds was spent, or sits in an open hold: that is ``unrecovered``, and
the package's ``refund_policy`` says what becomes of it: ``debt`` puts it into arrears (the
next credits pay it off, and nothing is spent meanwhile), ``absorb`` writes it off as the
seller's loss and reports it. Either way the refund entry says which, and the account
keeps a claim on each lot for it: what comes back into the lot later (a hold released, a
charge reversed) goes to the claim first (``domain.claims``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tollbooth.domain.claims import claiming, current, with_claims
from tollbooth.domain.errors import RefundTooLarge
from tollbooth.domain.events import refund_events
from tollbooth.domain.ledger import Account, Draw, Lot, Mutation, PaymentRefund, next_entry

RefundPolicy = Literal["debt", "absorb"]


@dataclass(frozen=True)
class Payment:
    """A payment that granted credits: the lots its entry granted, what it paid, and what
    has been refunded of it so far."""

    reference: str
    entry_id: str
    lots: tuple[Lot, ...]
    refunded_minor: int = 0
    dispute: str | None = None  # its dispute's status: opened, won or lost

    @property
    def paid_minor(self) -> int:
        return sum(lot.price_minor or 0 for lot in self.lots)

    @property
    def currency(self) -> str | None:
        return next((lot.currency for lot in self.lots if lot.currency), None)

    @property
    def package_id(self) -> str | None:
        return next((lot.package_id for lot in self.lots if lot.package_id), None)


@dataclass(frozen=True)
class Claw:
    lot_id: str
    owed: int  # what this refund claws back from the lot
    taken: int  # what the lot still held of it


@dataclass(frozen=True)
class RefundRequest:
    amount_minor: int | None  # None: all that is left to refund
    reason: str
    actor: str


def owed_at(granted: int, refunded_minor: int, paid_minor: int) -> int:
    """Credits a lot owes back once ``refunded_minor`` of ``paid_minor`` is refunded (rounded down)."""
    return granted * refunded_minor // paid_minor


def claws(account: Account, payment: Payment, after_minor: int) -> list[Claw]:
    """What each of the payment's lots owes back for refunding it up to ``after_minor``."""
    held = {lot.lot_id: lot.remaining for lot in account.lots}
    result = []
    for lot in payment.lots:
        owed = owed_at(lot.granted, after_minor, payment.paid_minor) - owed_at(
            lot.granted, payment.refunded_minor, payment.paid_minor
        )
        result.append(Claw(lot.lot_id, owed, min(owed, held.get(lot.lot_id, 0))))
    return result


def refund_mutation(
    account: Account,
    payment: Payment,
    asked: RefundRequest,
    policy: RefundPolicy,
    now: int,
    key: str,
    caller: Mapping[str, str],
) -> Mutation:
    """The refund: the lots' credits clawed back, what was already spent per ``policy``,
    and the payment's refunded total raised, guarded by what it was."""
    left = payment.paid_minor - payment.refunded_minor
    amount = left if asked.amount_minor is None else asked.amount_minor
    if left <= 0 or not 0 < amount <= left:
        raise RefundTooLarge(
            f"payment {payment.reference!r} has {left} (minor units) left to refund; asked for {amount}",
            paid_minor=payment.paid_minor,
            refunded_minor=payment.refunded_minor,
        )
    after = payment.refunded_minor + amount
    owed = claws(account, payment, after)
    clawed = sum(claw.taken for claw in owed)
    unrecovered = sum(claw.owed - claw.taken for claw in owed)
    debt = unrecovered if policy == "debt" else 0
    details: dict[str, Any] = {
        "payment_reference": payment.reference,
        "payment_entry_id": payment.entry_id,
        "amount_minor": amount,
        "currency": payment.currency,
        "refunded_minor": after,
        "paid_minor": payment.paid_minor,
        "clawed_back": clawed,
        "unrecovered": unrecovered,
        "refund_policy": policy,
        "claws": [{"lot_id": c.lot_id, "owed": c.owed, "taken": c.taken} for c in owed if c.owed],
        "reason": asked.reason,
        "actor": asked.actor,
        "caller": dict(caller),
    }
    entry = next_entry(account, "refund", -(clawed + debt), now, key, details)
    claims = current(account.clawing, now)
    for lot, claw in zip(payment.lots, owed, strict=True):
        claims = claiming(claims, lot, claw.owed - claw.taken, policy)
    refunded = Mutation(
        account,
        (entry,),
        transfers=tuple(Draw(c.lot_id, c.taken) for c in owed if c.taken),
        arrears_change=debt,
        refund=PaymentRefund(payment.reference, payment.refunded_minor, after),
        pending_events=(*account.pending_events, *refund_events(account.account_id, entry, now)),
    )
    return with_claims(refunded, claims)
