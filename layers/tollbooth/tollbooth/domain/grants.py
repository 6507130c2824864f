"""What granting credits produces: lots that carry their package's or plan's terms, and
when they expire."""

from __future__ import annotations

from typing import Any

from tollbooth.domain import clock
from tollbooth.domain.catalog import ExpiryPolicy, LotTerms
from tollbooth.domain.ledger import (
    Lot,
)

# An allowance that can roll over is written off by the expiry sweep only this long after
# its period ends, so that the next period's grant (which moves the rollover) comes first.
ROLLOVER_GRACE_MS = 2 * 86_400_000


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
