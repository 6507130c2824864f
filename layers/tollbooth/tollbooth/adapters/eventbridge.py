"""Publishing domain events to one EventBridge bus."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from tollbooth.domain.errors import StorageUnavailable

SOURCE = "tollbooth"
PUT_EVENTS_BATCH = 10  # EventBridge's limit per PutEvents call


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
