"""Domain events on EventBridge: their documented shape, and the publisher.

Every event has a stable ``event_id`` derived from what it is about (for example
``credits.expired:<account>:<lot>``). Delivery is at least once, so a consumer
deduplicates by that id. The shapes are described in docs/events.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tollbooth import clock
from tollbooth.errors import StorageUnavailable
from tollbooth.ledger import Lot
from tollbooth.money import format_credits

SOURCE = "tollbooth"
SCHEMA_VERSION = 1
PUT_EVENTS_BATCH = 10  # EventBridge's limit per PutEvents call


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


class Publisher(Protocol):
    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        """Publish every event or raise; a partial failure raises too (the caller retries all)."""


class EventBridgePublisher:
    """PutEvents to one bus; the client is created on first use."""

    def __init__(self, bus_name: str, client_factory: Callable[[], Any]) -> None:
        self.bus_name = bus_name
        self._client_factory = client_factory
        self._client: Any = None

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        if self._client is None:
            self._client = self._client_factory()
        for start in range(0, len(events), PUT_EVENTS_BATCH):
            batch = events[start : start + PUT_EVENTS_BATCH]
            entries = [
                {
                    "Source": SOURCE,
                    "DetailType": event["type"],
                    "Detail": json.dumps(event, separators=(",", ":")),
                    "EventBusName": self.bus_name,
                }
                for event in batch
            ]
            try:
                response = self._client.put_events(Entries=entries)
            except Exception as error:  # botocore's errors: the events stay in the outbox
                raise StorageUnavailable("publishing events failed") from error
            if response.get("FailedEntryCount"):
                raise StorageUnavailable(f"EventBridge refused {response['FailedEntryCount']} of {len(entries)} events")
