"""Holds' state (``domain.holds``): a hold, what the account item records of an open one,
and a change of a hold written with a mutation (used by ``Mutation.account_after``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tollbooth.domain.ledger import Lot

HoldStatus = Literal["open", "captured", "released", "expired"]


@dataclass(frozen=True)
class Hold:
    """Credits reserved for a job: portions moved out of the account's lots (each a copy of
    its lot's terms holding what the hold has of it), until captured, released or expired.
    A closed hold is kept, so that it is captured once, ever."""

    hold_id: str
    status: HoldStatus
    credits: int  # reserved when placed
    portions: tuple[Lot, ...]
    placed_at: int
    expires_at: int
    licence: str
    feature: str | None = None  # None: a hold of bare credits
    quantity: int | None = None
    dimensions: dict[str, str] = field(default_factory=dict)
    catalog_version: str | None = None  # the version that priced it, and prices its capture
    captured: int = 0
    closed_at: int | None = None

    @property
    def held(self) -> int:
        return sum(portion.remaining for portion in self.portions)


@dataclass(frozen=True)
class HoldRef:
    """An open hold as the account item records it: what it holds, and when it expires."""

    hold_id: str
    credits: int
    expires_at: int


@dataclass(frozen=True)
class HoldChange:
    """A hold written with a mutation, guarded by its status before (None: placed now)."""

    before: Hold | None
    after: Hold


def with_hold(refs: tuple[HoldRef, ...], change: HoldChange | None) -> tuple[HoldRef, ...]:
    """The account's open holds once ``change`` is written."""
    if change is None:
        return refs
    hold = change.after
    kept = tuple(ref for ref in refs if ref.hold_id != hold.hold_id)
    return (*kept, HoldRef(hold.hold_id, hold.held, hold.expires_at)) if hold.status == "open" else kept


def hold_record(hold: Hold) -> dict[str, Any]:
    """How a hold's own fields are stored (its portions are stored as lots are)."""
    return {
        "status": hold.status,
        "credits": hold.credits,
        "placed_at": hold.placed_at,
        "expires_at": hold.expires_at,
        "licence": hold.licence,
        "feature": hold.feature,
        "quantity": hold.quantity,
        "dimensions": hold.dimensions,
        "catalog_version": hold.catalog_version,
        "captured": hold.captured,
        "closed_at": hold.closed_at,
    }
