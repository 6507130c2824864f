"""The usage dead-letter queue on SQS: rejected records with their reasons."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tollbooth.domain.errors import StorageUnavailable

# SQS message attributes are small: the reasons list is kept within this many characters.
REASONS_ATTRIBUTE_LIMIT = 4096


MAX_REASON_LENGTH = 500


def reasons_attribute(reasons: list[str], limit: int = REASONS_ATTRIBUTE_LIMIT) -> str:
    """The reasons as a JSON list that fits in ``limit`` characters: each reason cut to
    ``MAX_REASON_LENGTH``, then as many as fit; ``reason_count`` says how many there were."""
    kept: list[str] = []
    for reason in reasons:
        short = reason if len(reason) <= MAX_REASON_LENGTH else reason[: MAX_REASON_LENGTH - 3] + "..."
        if len(json.dumps([*kept, short])) > limit:
            break
        kept.append(short)
    return json.dumps(kept)


class SqsDeadLetters:
    """SendMessage to the usage dead-letter queue; the client is created on first use."""

    def __init__(self, queue_url: str, client_factory: Callable[[], Any]) -> None:
        self.queue_url = queue_url
        self._client_factory = client_factory
        self._client: Any = None

    def send(self, body: str, reasons: list[str], source_message_id: str) -> None:
        if self._client is None:
            self._client = self._client_factory()
        attributes = {
            "reasons": {"DataType": "String", "StringValue": reasons_attribute(reasons)},
            "reason_count": {"DataType": "Number", "StringValue": str(len(reasons))},
            "source_message_id": {"DataType": "String", "StringValue": source_message_id},
        }
        try:
            self._client.send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attributes)
        except Exception as error:  # botocore's errors: the message is retried instead
            raise StorageUnavailable("the dead-letter queue refused the message") from error
