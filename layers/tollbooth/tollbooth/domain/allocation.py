"""Which lots pay: burn-down order, allocating a debit, and what the lots show (the next
expiry, the perks they carry). Pure functions over ``domain.ledger``'s values."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tollbooth.domain.errors import FeatureLocked, InsufficientCredits
from tollbooth.domain.ledger import Account, Draw, Expiry, Lot, Use
from tollbooth.domain.money import format_credits


def burn_down_order(lots: tuple[Lot, ...] | list[Lot]) -> list[Lot]:
    """Earliest expiry first, never-expiring last; ties by priority, then age."""
    return sorted(
        lots,
        key=lambda lot: (lot.expires_at is None, lot.expires_at or 0, lot.priority, lot.created_at, lot.lot_id),
    )


def allocate(account: Account, amount: int, now: int, use: Use | None = None) -> tuple[Draw, ...]:
    """Pick the lots that may pay for ``use`` and pay ``amount`` in burn-down order.

    Raises FeatureLocked when the feature needs an unlocking lot the account lacks, and
    InsufficientCredits (naming the kind of credits missing) when the eligible lots are short.
    """
    if account.arrears > 0:
        # Usage already performed went unpaid: new credits pay it off before anything else.
        raise InsufficientCredits(
            f"the account owes {format_credits(account.arrears)} credits of usage; a purchase or grant pays it off",
            required=amount,
            available=0,
        )
    spendable = [lot for lot in account.lots if lot.spendable_at(now)]
    if use is not None and use.locked and not any(use.feature in lot.unlocks for lot in spendable):
        raise FeatureLocked(
            f"{use.feature!r} needs credits from one of {list(use.unlocked_by)}", allowed=list(use.unlocked_by)
        )
    eligible = spendable if use is None else [lot for lot in spendable if lot.pays_for(use)]
    available = sum(lot.remaining for lot in eligible)
    if amount > available:
        if use is None:
            raise InsufficientCredits("not enough credits for this request", required=amount, available=available)
        restricted = account.available_at(now) - available
        message = f"not enough credits that may pay for {use.feature!r} under a {use.licence!r} licence"
        if restricted:
            message += f" ({format_credits(restricted)} more credits on the account may not)"
        raise InsufficientCredits(
            message, required=amount, available=available, missing={"licence": use.licence, "feature": use.feature}
        )
    draws, _ = take_in_order(eligible, amount)
    return draws


def take_in_order(lots: list[Lot], amount: int) -> tuple[tuple[Draw, ...], int]:
    """Take up to ``amount`` from ``lots`` in burn-down order: the draws, and what is left untaken."""
    draws = []
    left = amount
    for lot in burn_down_order(lots):
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            draws.append(Draw(lot.lot_id, take))
        left -= take
    return tuple(draws), left


def next_expiry(account: Account, now: int) -> Expiry | None:
    """The earliest future expiry instant and the total that expires then."""
    upcoming = [lot for lot in account.lots if lot.spendable_at(now) and lot.expires_at is not None]
    if not upcoming:
        return None
    first = min(lot.expires_at for lot in upcoming if lot.expires_at is not None)
    return Expiry(first, sum(lot.remaining for lot in upcoming if lot.expires_at == first))


@dataclass(frozen=True)
class Perks:
    priority_processing: bool
    unlocked_features: tuple[str, ...]


def perks_at(account: Account, now: int) -> Perks:
    """Perks live on lots, and last while those lots hold spendable credits."""
    spendable = [lot for lot in account.lots if lot.spendable_at(now)]
    return Perks(
        priority_processing=any(lot.priority_processing for lot in spendable),
        unlocked_features=tuple(sorted({feature for lot in spendable for feature in lot.unlocks})),
    )


def draw_what_lots_can(account: Account, amount: int, now: int, use: Use) -> tuple[tuple[Draw, ...], int]:
    """For usage already performed: draw what the lots that may pay for ``use`` can, in
    burn-down order, and return the draws and what is left unpaid (it becomes arrears)."""
    return take_in_order([lot for lot in account.lots if lot.spendable_at(now) and lot.pays_for(use)], amount)


def with_draws(account: Account, draws: tuple[Draw, ...]) -> Account:
    """The account with ``draws`` taken out of its lots (to allocate several debits in a row)."""
    taken = {draw.lot_id: draw.amount for draw in draws}
    return replace(
        account, lots=tuple(replace(x, remaining=x.remaining - taken.get(x.lot_id, 0)) for x in account.lots)
    )


def pay_off_arrears(lots: list[Lot], arrears: int) -> tuple[list[Lot], int]:
    """New lots with arrears taken out of them first, soonest-expiring first; and what was paid."""
    draws, left = take_in_order(lots, arrears)
    paid = {draw.lot_id: draw.amount for draw in draws}
    return [replace(lot, remaining=lot.remaining - paid.get(lot.lot_id, 0)) for lot in lots], arrears - left


def draw_records(draws: tuple[Draw, ...], lots: tuple[Lot, ...]) -> list[dict[str, Any]]:
    """How an entry records a debit's draws: each lot and amount, and the entry that granted
    the lot (``grant_seq``), where a reversal finds its terms once the lot has left the store."""
    granted_in = {lot.lot_id: lot.grant_seq for lot in lots}
    records: list[dict[str, Any]] = []
    for draw in draws:
        record: dict[str, Any] = {"lot_id": draw.lot_id, "amount": draw.amount}
        if granted_in.get(draw.lot_id) is not None:
            record["grant_seq"] = granted_in[draw.lot_id]
        records.append(record)
    return records
