"""Domain events: their documented shape (docs/events.md).

Every event has a stable ``event_id`` derived from what it is about (for example
``credits.expired:<account>:<lot>``). Delivery is at least once, so a consumer
deduplicates by that id.
"""

from __future__ import annotations

from typing import Any

from tollbooth.domain import clock
from tollbooth.domain.ledger import Lot
from tollbooth.domain.money import format_credits

SCHEMA_VERSION = 1


def lot_event(kind: str, account_id: str, lot: Lot, amount: int, now: int, **extra: Any) -> dict[str, Any]:
    """The detail of a credits.* event about one lot."""
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": f"{kind}:{account_id}:{lot.lot_id}",
        "type": kind,
        "account_id": account_id,
        "lot_id": lot.lot_id,
        "source": lot.source,
        "package_id": lot.package_id,
        "plan_id": lot.plan_id,
        "amount": format_credits(amount),
        "expires_at": None if lot.expires_at is None else clock.to_iso(lot.expires_at),
        "occurred_at": clock.to_iso(now),
        **extra,
    }
