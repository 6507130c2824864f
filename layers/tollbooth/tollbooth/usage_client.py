"""The client AI workers use to report usage to Tollbooth through SQS.

    from tollbooth.usage_client import UsageClient
    client = UsageClient(queue_url)            # the stack's UsageQueueUrl output
    client.send([{"event_id": "job-42", "account_id": "alice", "feature": "text_generation",
                  "quantity": 1200, "occurred_at": "2026-11-25T12:00:00Z", "worker_id": "gpu-7"}])

It validates every record against the message contract (tollbooth.usage) before sending,
packs records into messages under the SQS size limit, sends them with SendMessageBatch
(10 messages per call), and retries what SQS did not take because it was throttled or
failed (5xx), with exponential backoff. A record is never dropped silently: if it cannot be
sent, ``send`` raises ``UsageNotSent`` holding every record that was not sent, to keep and
send again (resending is safe: each event_id is charged once), chained to the error that
stopped it (no credentials, access denied, no such queue: those are not retried). Invalid
records are refused before anything is sent: ``InvalidUsage`` names each by its index.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tollbooth.contracts.common import describe_problems
from tollbooth.contracts.usage import MAX_RECORDS_PER_MESSAGE, SCHEMA, UsageRecord

# SQS takes 262,144 bytes per message and per SendMessageBatch call; keep a margin.
MAX_MESSAGE_BYTES = 250_000
MAX_BATCH_BYTES = 250_000
MAX_BATCH_ENTRIES = 10
_ENVELOPE = len(json.dumps({"schema": SCHEMA, "records": []}, separators=(",", ":")))
# What SQS answers when it is busy: worth another try, as is any 5xx.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "KmsThrottled",
        "KMS.ThrottlingException",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
    }
)


class InvalidUsage(ValueError):
    """Records that break the usage contract; ``problems`` maps each one's index to why."""

    def __init__(self, problems: dict[int, str]) -> None:
        listed = "; ".join(f"record {index}: {why}" for index, why in sorted(problems.items()))
        super().__init__(f"{len(problems)} invalid usage records, nothing sent: {listed}")
        self.problems = problems


def is_retryable(error: Exception) -> bool:
    """Throttling or a server error (5xx); anything else will fail the same way again."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return False
    code = str((response.get("Error") or {}).get("Code", ""))
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code in THROTTLING_CODES or (isinstance(status, int) and status >= 500)


class UsageNotSent(Exception):
    """Some records could not be sent; ``records`` holds them, ``reason`` says why."""

    def __init__(self, reason: str, records: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(records)} usage records not sent: {reason}")
        self.reason = reason
        self.records = records


@dataclass(frozen=True)
class SendReport:
    records: int
    messages: int
    calls: int
    retries: int


def pack(records: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group records into messages: each under MAX_MESSAGE_BYTES and MAX_RECORDS_PER_MESSAGE."""
    messages: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = _ENVELOPE
    for record in records:
        record_size = len(json.dumps(record, separators=(",", ":")).encode()) + 1  # and a comma
        if _ENVELOPE + record_size > MAX_MESSAGE_BYTES:
            raise UsageNotSent("a single record is larger than an SQS message can hold", [record])
        if current and (size + record_size > MAX_MESSAGE_BYTES or len(current) == MAX_RECORDS_PER_MESSAGE):
            messages.append(current)
            current, size = [], _ENVELOPE
        current.append(record)
        size += record_size
    if current:
        messages.append(current)
    return messages


def validate(records: Iterable[UsageRecord | dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record as it is sent, or InvalidUsage naming each invalid one by its index."""
    valid: list[dict[str, Any]] = []
    problems: dict[int, str] = {}
    for index, record in enumerate(records):
        try:
            valid.append(UsageRecord.model_validate(record).model_dump(mode="json", exclude_none=True))
        except ValidationError as error:
            problems[index] = describe_problems(error.errors()) or str(error)
    if problems:
        raise InvalidUsage(problems)
    return valid


def _records(messages: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """The records in these messages, in the order they were given."""
    return [record for _, text in sorted(messages) for record in json.loads(text)["records"]]


def body(records: list[dict[str, Any]]) -> str:
    return json.dumps({"schema": SCHEMA, "records": records}, separators=(",", ":"))


class UsageClient:
    def __init__(
        self,
        queue_url: str,
        sqs: Any = None,
        *,
        max_attempts: int = 6,
        base_delay: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if sqs is None:
            import boto3

            sqs = boto3.client("sqs")
        self.queue_url = queue_url
        self.sqs = sqs
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self._sleep = sleep

    def send(self, records: Iterable[UsageRecord | dict[str, Any]]) -> SendReport:
        """Validate, pack and send every record, or raise UsageNotSent with those that were not."""
        valid = validate(records)
        messages = [body(group) for group in pack(valid)]
        pending = list(enumerate(messages))
        refused: list[tuple[int, str]] = []  # SQS said the message itself is wrong: no retry
        reason = ""
        last_error: Exception | None = None
        calls = retries = 0
        for attempt in range(self.max_attempts):
            if not pending:
                break
            if attempt:
                retries += 1
                self._sleep(random.uniform(0, self.base_delay * 2**attempt))
            failed: list[tuple[int, str]] = []
            for position, batch in enumerate(self._batches(pending)):
                calls += 1
                try:
                    retry, permanent, why = self._send_batch(batch)
                except Exception as error:
                    if not is_retryable(error):  # it would fail the same way: stop, and say why
                        unsent = refused + failed + [m for later in self._batches(pending)[position:] for m in later]
                        raise UsageNotSent(f"SQS refused the call: {error}", _records(unsent)) from error
                    retry, permanent, why, last_error = batch, [], "", error
                failed += retry
                refused += permanent
                reason = why or reason
            pending = failed
        if pending or refused:
            why = reason if refused else f"SQS did not accept them after {self.max_attempts} attempts"
            raise UsageNotSent(why, _records(refused + pending)) from last_error
        return SendReport(records=len(valid), messages=len(messages), calls=calls, retries=retries)

    @staticmethod
    def _batches(messages: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
        batches: list[list[tuple[int, str]]] = []
        current: list[tuple[int, str]] = []
        size = 0
        for message in messages:
            message_size = len(message[1].encode())
            if current and (len(current) == MAX_BATCH_ENTRIES or size + message_size > MAX_BATCH_BYTES):
                batches.append(current)
                current, size = [], 0
            current.append(message)
            size += message_size
        if current:
            batches.append(current)
        return batches

    def _send_batch(self, batch: list[tuple[int, str]]) -> tuple[list[tuple[int, str]], list[tuple[int, str]], str]:
        """Send one SendMessageBatch: the messages to try again, those SQS refused for good, and why."""
        entries = [{"Id": str(index), "MessageBody": text} for index, text in batch]
        reply = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        by_id = dict(batch)
        retry, refused, reason = [], [], ""
        for failure in reply.get("Failed", []):
            message = (int(failure["Id"]), by_id[int(failure["Id"])])
            if failure.get("SenderFault"):
                refused.append(message)
                reason = f"SQS refused a message: {failure.get('Message', failure.get('Code', ''))}"
            else:
                retry.append(message)
        return retry, refused, reason
