"""A claim's state (``domain.claims``): on the account, what is still owed of credits that
come back into a refunded payment's lots or a voided lot."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

ClaimKind = Literal["debt", "absorb", "void"]


@dataclass(frozen=True)
class Claim:
    lot_id: str
    owed: int  # millicredits still owed of credits that come back into the lot
    kind: ClaimKind  # the refund's policy (debt, absorb), or a void's
    expires_at: int | None = None  # the lot's: the claim ends with it


def claim_entries_at_most(claims: tuple[Claim, ...]) -> int:
    """The entries claims may add to a change that gives credits back: one per kind."""
    return len({claim.kind for claim in claims})


def through_account(disputed: Iterable[str], claims: Iterable[Claim]) -> tuple[str, ...]:
    """The lots whose credits a slice's holds give back through the account: under an open
    dispute (they come back frozen there), or claimed (the claim takes them there)."""
    return tuple(sorted(set(disputed) | {claim.lot_id for claim in claims}))
