"""What granting credits produces: a purchase's lots (with its bonus and any campaign's), a
service grant's lot, a plan's allowance (with what the last period rolls over), and the
mutation that writes any of them, paying arrears off first.

Each function decides from the catalog in force and the account as it stands; none of them
reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from tollbooth.domain import clock, ids
from tollbooth.domain.allocation import pay_off_arrears
from tollbooth.domain.catalog import Catalog, ExpiryPolicy, LotTerms, Package
from tollbooth.domain.errors import (
    GrantTooLarge,
    InvalidExpiry,
    InvalidPeriod,
    InvalidRequest,
    UnknownPackage,
    UnknownPlan,
)
from tollbooth.domain.ledger import DEFAULT_PRIORITY, Account, Draw, EntryKind, Lot, LotSource, Mutation, next_entry
from tollbooth.domain.money import format_credits
from tollbooth.domain.plans import PERIOD_CLAMP_DAYS, billing_period_end, is_plan_period, plan_periods, rollover

# An allowance that can roll over is written off by the expiry sweep only this long after
# its period ends, so that the next period's grant (which moves the rollover) comes first.
ROLLOVER_GRACE_MS = 2 * 86_400_000


@dataclass(frozen=True)
class Credit:
    """Credits about to be granted: the lots, the ledger entry's kind and details, and any
    credits moved in from older lots (a rollover) rather than granted."""

    kind: EntryKind
    lots: tuple[Lot, ...]
    details: dict[str, Any]
    payment_reference: str | None = None
    transfers: tuple[Draw, ...] = ()


def expiry_from(policy: ExpiryPolicy, granted_at: int, period_end: int | None = None) -> int | None:
    """A lot's expiry under ``policy``. "End of billing period" needs the account's current
    period; an account with no subscription gets one calendar month instead."""
    if policy.kind == "days":
        return clock.add_days(granted_at, policy.count)
    if policy.kind == "months":
        return clock.add_months(granted_at, policy.count)
    if policy.kind == "period_end":
        return period_end if period_end is not None else clock.add_months(granted_at, 1)
    return None


def lot_with_terms(terms: LotTerms, **fields: Any) -> Lot:
    """A lot that carries the restrictions and perks of the package or plan granting it."""

    def canonical(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if names is None else tuple(sorted(set(names)))

    return Lot(
        licences=canonical(terms.licences),
        features=canonical(terms.features),
        priority_processing=terms.priority_processing,
        unlocks=canonical(terms.unlocks) or (),
        **fields,
    )


def _package_lot(
    package_id: str, package: Package, now: int, period_end: int | None, source: LotSource, credits: int, **terms: Any
) -> Lot:
    expiry: ExpiryPolicy = terms.pop("expiry")
    return lot_with_terms(
        package,
        lot_id=ids.new_id("lot", now),
        source=source,
        granted=credits,
        remaining=credits,
        created_at=now,
        expires_at=expiry_from(expiry, now, period_end),
        currency=package.currency,
        package_id=package_id,
        **terms,
    )


def purchase(catalog: Catalog, account: Account, package_id: str, payment_reference: str, now: int) -> Credit:
    """A package bought: its credits, its bonus (not paid for: price 0), and a campaign's bonus."""
    package = catalog.packages.get(package_id)
    if package is None:
        raise UnknownPackage(f"unknown package {package_id!r}; known packages: {sorted(catalog.packages)}")
    period_end = billing_period_end(account, now)

    def lot(source: LotSource, credits: int, **terms: Any) -> Lot:
        return _package_lot(package_id, package, now, period_end, source, credits, **terms)

    bonus_expiry = package.bonus_expiry or package.expiry
    lots = [
        lot(
            "purchase",
            package.credits,
            expiry=package.expiry,
            priority=package.priority,
            price_minor=package.price_minor,
        )
    ]
    if package.bonus_credits:
        lots.append(
            lot("bonus", package.bonus_credits, expiry=bonus_expiry, priority=package.bonus_priority, price_minor=0)
        )
    campaign = catalog.campaign_for(package_id, now)
    if campaign is not None:
        campaign_id, terms = campaign
        expiry = terms.bonus_expiry or bonus_expiry
        bonus = lot("bonus", terms.bonus_for(package), expiry=expiry, priority=package.bonus_priority, price_minor=0)
        lots.append(replace(bonus, campaign_id=campaign_id))
    details = {
        "package_id": package_id,
        "payment_reference": payment_reference,
        "lot_ids": [x.lot_id for x in lots],
        "catalog_version": catalog.version,
    }
    return Credit("purchase", tuple(lots), details, payment_reference=payment_reference)


@dataclass(frozen=True)
class GrantTerms:
    """What a service asks to grant (credits in millicredits; ``expires_at`` in epoch ms)."""

    credits: int
    source: LotSource
    reason: str
    expires_at: int | None = None
    priority: int | None = None
    licences: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None


def service_grant(catalog: Catalog, asked: GrantTerms, now: int) -> Credit:
    """Promotional, bonus or adjustment credits a service grants, within the catalog's cap."""
    for name in sorted(set(asked.licences or ()) - set(catalog.licences)):
        raise InvalidRequest(f"licences: {name!r} is not one of {list(catalog.licences)}")
    for name in sorted(set(asked.features or ()) - set(catalog.features)):
        raise InvalidRequest(f"features: {name!r} is not one of {sorted(catalog.features)}")
    if asked.credits <= 0:
        raise InvalidRequest("credits must be greater than 0")
    if asked.expires_at is not None and asked.expires_at <= now:
        raise InvalidExpiry("expires_at must be in the future")
    if asked.credits > catalog.max_grant:
        raise GrantTooLarge(
            f"a single grant may create at most {format_credits(catalog.max_grant)} credits "
            f"(max_grant in catalog {catalog.version})"
        )
    lot = lot_with_terms(
        LotTerms(licences=asked.licences, features=asked.features),
        lot_id=ids.new_id("lot", now),
        source=asked.source,
        granted=asked.credits,
        remaining=asked.credits,
        created_at=now,
        expires_at=asked.expires_at,
        priority=DEFAULT_PRIORITY[asked.source] if asked.priority is None else asked.priority,
        reason=asked.reason,
    )
    details = {
        "source": asked.source,
        "reason": asked.reason,
        "lot_ids": [lot.lot_id],
        "catalog_version": catalog.version,
    }
    return Credit("grant", (lot,), details)


def _check_period(account: Account, plan_id: str, period: str, months: int, start: int, end: int, now: int) -> None:
    if not is_plan_period(start, end, months):
        raise InvalidPeriod(
            f"plan {plan_id!r} is {period}: a period starting at {clock.to_iso(start)} ends at "
            f"{clock.to_iso(clock.add_months(start, months))}, or up to "
            f"{PERIOD_CLAMP_DAYS} days later where the billing calendar clamps a short month"
        )
    if not start <= now < end:
        raise InvalidPeriod(
            f"the period {clock.to_iso(start)} to {clock.to_iso(end)} is not current; "
            "an allowance is granted during its period"
        )
    for granted in plan_periods(account):
        if granted.plan_id == plan_id and granted.ends_at > start:
            raise InvalidPeriod(
                f"plan {plan_id!r} already granted a period that ends at {clock.to_iso(granted.ends_at)}"
            )


def allowance(catalog: Catalog, account: Account, plan_id: str, start: int, end: int | None, now: int) -> Credit:
    """A plan's allowance for the period from ``start`` (to ``end``, or one plan period),
    and up to the plan's cap of what the last period left, moved into a rollover lot."""
    plan = catalog.plans.get(plan_id)
    if plan is None:
        raise UnknownPlan(f"unknown plan {plan_id!r}; known plans: {sorted(catalog.plans)}")
    end = clock.add_months(start, plan.months) if end is None else end
    _check_period(account, plan_id, plan.period, plan.months, start, end, now)
    carried = rollover(account, plan_id, start, plan.rollover_cap, ROLLOVER_GRACE_MS)
    common = {"created_at": now, "expires_at": end, "currency": plan.currency, "plan_id": plan_id}
    grace = ROLLOVER_GRACE_MS if plan.rollover_cap else 0
    lots = [
        lot_with_terms(
            plan,
            lot_id=ids.new_id("lot", now),
            source="allowance",
            granted=plan.allowance,
            remaining=plan.allowance,
            priority=plan.priority,
            price_minor=plan.price_minor,
            expiry_grace=grace,
            **common,
        )
    ]
    rolled = sum(transfer.amount for transfer in carried)
    if rolled:
        # Moved, not granted: the credits were granted (and paid for) last period.
        priority = DEFAULT_PRIORITY["rollover"]
        lots.append(
            lot_with_terms(
                plan,
                lot_id=ids.new_id("lot", now),
                source="rollover",
                granted=rolled,
                remaining=rolled,
                priority=priority,
                price_minor=0,
                expiry_grace=ROLLOVER_GRACE_MS,
                **common,
            )
        )
    details = {
        "plan_id": plan_id,
        "period_start": clock.to_iso(start),
        "period_end": clock.to_iso(end),
        "lot_ids": [lot.lot_id for lot in lots],
        "rolled_over": [{"lot_id": t.lot_id, "amount": t.amount} for t in carried],
        "catalog_version": catalog.version,
    }
    return Credit("allowance", tuple(lots), details, transfers=carried)


def lot_from_terms(terms: dict[str, Any]) -> Lot:
    """The lot as it was granted (all of it remaining), from ``lot_terms``."""
    values: dict[str, Any] = {name: tuple(v) if isinstance(v, list) else v for name, v in terms.items()}
    return Lot(remaining=int(values["granted"]), **values)


def lot_terms(lot: Lot) -> dict[str, Any]:
    """What a lot was granted with, as its granting entry records it: the lot's record once
    its last credit is gone and it leaves the store (refunds and reversals read it)."""
    terms = {name: getattr(lot, name) for name in LOT_TERMS}
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in terms.items()
        if value is not None and value is not False and value != ()  # a price of 0 is kept
    }


LOT_TERMS = tuple(f.name for f in fields(Lot) if f.name not in ("remaining", "warned", "grant_seq"))


def credit_mutation(account: Account, credit: Credit, now: int, key: str, caller: Mapping[str, str]) -> Mutation:
    """The mutation that grants ``credit``: new credits pay off arrears (usage already
    performed) before anything else; credits moved in (a rollover) come from lots that have
    already expired, so they add to what is available, not to the ledger balance."""
    moved = sum(transfer.amount for transfer in credit.transfers)
    amount = sum(lot.granted for lot in credit.lots) - moved
    # Each lot remembers the entry that records its terms (``Lot.grant_seq``).
    granted = [replace(lot, grant_seq=account.seq + 1) for lot in credit.lots]
    lots, paid_off = pay_off_arrears(granted, account.arrears)
    details = {**credit.details, "lots": [lot_terms(lot) for lot in credit.lots], "caller": dict(caller)}
    if paid_off:
        details["arrears_paid"] = paid_off
    entry = next_entry(account, credit.kind, amount, now, key, details)
    return Mutation(
        account,
        (entry,),
        new_lots=tuple(lots),
        payment_reference=credit.payment_reference,
        transfers=credit.transfers,
        arrears_change=-paid_off,
    )
