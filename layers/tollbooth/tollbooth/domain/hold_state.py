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
    # A hold on a slice (``domain.slice_holds``) keeps its events until the sweep publishes
    # them: its own outbox, since its changes leave the account item alone.
    pending_events: tuple[dict[str, Any], ...] = ()

    @property
    def held(self) -> int:
        return sum(portion.remaining for portion in self.portions)


@dataclass(frozen=True)
class HoldRef:
    """An open hold as the account item records it: what it holds, and when it expires."""

    hold_id: str
    credits: int
    expires_at: int
    # On a slice: when the lots its portions came from are due to the sweep (a warning or a
    # write-off), so that a recall can say when the slice is next due.
    dues: tuple[int, ...] = ()


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


def hold_due_at(hold: Hold) -> int | None:
    """When the sweep has work on a hold of a slice's (its own entry in the expiry index):
    events to publish (at once), or its expiry while it is open; None: nothing, ever."""
    if hold.pending_events:
        return hold.placed_at if hold.closed_at is None else hold.closed_at
    return hold.expires_at if hold.status == "open" else None


@dataclass(frozen=True)
class DueHold:
    """A hold of a slice's the expiry index says the sweep has work on."""

    account_id: str
    hold: Hold


def newest_holds(holds: list[Hold], limit: int) -> list[Hold]:
    """The newest ``limit`` of ``holds`` (read from several partitions), newest first."""
    return sorted(holds, key=lambda hold: (hold.placed_at, hold.hold_id), reverse=True)[:limit]
