"""Audited corrections by an operator: adjustments (signed credits) and voided lots.

- A positive adjustment mints credits: a lot of source ``adjustment`` (no expiry, no
  restriction), within the catalog's per-grant cap, paying off arrears first as any new
  credits do. It is the one way to add credits by correction: grants no longer take
  ``source: adjustment``.
- A negative adjustment takes credits out of the spendable lots in burn-down order,
  whatever they may pay for (a correction is not a use). It never takes the balance below
  zero, unless ``allow_arrears``: then what the lots cannot give becomes arrears, which the
  next credits pay off. Never created from nothing, never a debt dropped.
- A void removes what is left of one lot, expired or not, as its own entry.

Each is a ledger entry of its own kind (``adjustment``, ``void``) recording the reason, the
actor (the operator or system that asked) and the caller, with its event in the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from tollbooth.domain import clock, ids
from tollbooth.domain.allocation import take_in_order
from tollbooth.domain.catalog import Catalog
from tollbooth.domain.claims import claiming, current, with_claims
from tollbooth.domain.errors import GrantTooLarge, InsufficientCredits, InvalidRequest, LotNotFound
from tollbooth.domain.events import adjusted_event, voided_event
from tollbooth.domain.expiry import breakage_minor
from tollbooth.domain.grants import Credit, credit_mutation
from tollbooth.domain.ledger import DEFAULT_PRIORITY, Account, Draw, Lot, Mutation, next_entry
from tollbooth.domain.money import format_credits


@dataclass(frozen=True)
class Correction:
    """Who asked for a correction and why: both required, kept in the entry and its event."""

    reason: str
    actor: str


def adjustment_mutation(
    catalog: Catalog,
    account: Account,
    credits: int,
    correction: Correction,
    allow_arrears: bool,
    now: int,
    key: str,
    caller: Mapping[str, str],
) -> Mutation:
    """Add ``credits`` (positive) or take them out (negative), as one ``adjustment`` entry."""
    if credits == 0:
        raise InvalidRequest("credits must not be 0")
    audit = {"reason": correction.reason, "actor": correction.actor}
    if credits > 0:
        mutation = _credit(catalog, account, credits, audit, now, key, caller)
    else:
        mutation = _debit(account, -credits, audit, allow_arrears, now, key, caller)
    entry = mutation.entries[0]
    return replace(mutation, pending_events=(*account.pending_events, adjusted_event(account.account_id, entry, now)))


def _credit(
    catalog: Catalog,
    account: Account,
    credits: int,
    audit: dict[str, Any],
    now: int,
    key: str,
    caller: Mapping[str, str],
) -> Mutation:
    if credits > catalog.max_grant:
        raise GrantTooLarge(
            f"a single adjustment may create at most {format_credits(catalog.max_grant)} credits "
            f"(max_grant in catalog {catalog.version})"
        )
    lot = Lot(
        ids.new_id("lot", now),
        "adjustment",
        credits,
        credits,
        now,
        priority=DEFAULT_PRIORITY["adjustment"],
        reason=audit["reason"],
    )
    details = {**audit, "lot_ids": [lot.lot_id], "catalog_version": catalog.version}
    return credit_mutation(account, Credit("adjustment", (lot,), details), now, key, caller)


def _debit(
    account: Account,
    credits: int,
    audit: dict[str, Any],
    allow_arrears: bool,
    now: int,
    key: str,
    caller: Mapping[str, str],
) -> Mutation:
    spendable = [lot for lot in account.lots if lot.spendable_at(now)]
    available = max(0, sum(lot.remaining for lot in spendable) - account.arrears)
    if credits > available and not allow_arrears:
        raise InsufficientCredits(
            f"the adjustment would take the balance below zero ({format_credits(available)} credits available); "
            "send allow_arrears to record the rest as arrears",
            required=credits,
            available=available,
        )
    # Arrears come before the lots: what the lots hold beyond them is what may be taken.
    draws, unpaid = take_in_order(spendable, min(credits, available))
    debt = credits - sum(draw.amount for draw in draws)
    details = {**audit, "draws": _draws(draws), "unpaid": debt, "caller": dict(caller)}
    entry = next_entry(account, "adjustment", -credits, now, key, details)
    assert unpaid == 0, "the draws never ask the lots for more than they hold"
    return Mutation(account, (entry,), draws=draws, arrears_change=debt)


def void_mutation(
    account: Account, lot_id: str, correction: Correction, now: int, key: str, caller: Mapping[str, str]
) -> Mutation:
    """Remove what is left of lot ``lot_id`` (expired or not), as one ``void`` entry."""
    lot = next((x for x in account.lots if x.lot_id == lot_id), None)
    if lot is None:
        raise LotNotFound(f"the account holds no credits in a lot {lot_id!r}")
    details = {
        "reason": correction.reason,
        "actor": correction.actor,
        "lot_id": lot.lot_id,
        "source": lot.source,
        "expires_at": None if lot.expires_at is None else clock.to_iso(lot.expires_at),
        # What the voided credits cost, for finance (none for credits no one paid for).
        "amount_minor": breakage_minor(lot, lot.remaining),
        "currency": lot.currency,
        "draws": _draws((Draw(lot.lot_id, lot.remaining),)),
        "caller": dict(caller),
    }
    entry = next_entry(account, "void", -lot.remaining, now, key, details)
    events = (*account.pending_events, voided_event(account.account_id, entry, lot, now))
    voided = Mutation(account, (entry,), transfers=(Draw(lot.lot_id, lot.remaining),), pending_events=events)
    # Credits that left the lot before (held, or spent by a charge since reversed) may come back.
    return with_claims(voided, claiming(current(account.clawing, now), lot, lot.granted - lot.remaining, "void"))


def _draws(draws: tuple[Draw, ...]) -> list[dict[str, Any]]:
    return [{"lot_id": draw.lot_id, "amount": draw.amount} for draw in draws]
