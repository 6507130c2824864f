"""Allowance periods: the latest period each plan granted, kept on the account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollbooth.domain.ledger import Lot


@dataclass(frozen=True)
class PlanPeriod:
    """The latest allowance period a plan granted: kept on the account, so that a period's
    end outlives the lot that carried it (a spent allowance still defines the period)."""

    plan_id: str
    granted_at: int
    ends_at: int


def with_periods(periods: tuple[PlanPeriod, ...], new_lots: tuple[Lot, ...]) -> tuple[PlanPeriod, ...]:
    """The latest period of each plan, once ``new_lots`` are granted."""
    latest = {period.plan_id: period for period in periods}
    for lot in new_lots:
        if lot.source == "allowance" and lot.plan_id is not None and lot.expires_at is not None:
            known = latest.get(lot.plan_id)
            if known is None or lot.expires_at > known.ends_at:
                latest[lot.plan_id] = PlanPeriod(lot.plan_id, lot.created_at, lot.expires_at)
    return tuple(latest[plan_id] for plan_id in sorted(latest))
