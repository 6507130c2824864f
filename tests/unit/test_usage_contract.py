"""The usage message contract and the worker client, with no AWS (a stand-in SQS client)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from tollbooth.contracts.usage import MAX_RECORDS_PER_MESSAGE, message_body, parse_message
from tollbooth.usage_client import MAX_MESSAGE_BYTES, InvalidUsage, UsageClient, UsageNotSent, pack


def aws_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendMessageBatch"
    )


def record(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "account_id": "alice",
        "feature": "text_generation",
        "quantity": 500,
        "occurred_at": "2026-11-25T12:00:00Z",
        "worker_id": "w1",
        **extra,
    }


def test_a_message_splits_into_valid_and_rejected_records_with_reasons() -> None:
    body = message_body([record(1), record(2, quantity=2.5), record(3, occurred_at="2026-11-25T12:00:00"), {"x": 1}])
    valid, rejected = parse_message(body)
    assert [r.event_id for r in valid] == ["e1"]
    reasons = [r.reason for r in rejected]
    assert "quantity" in reasons[0] and "occurred_at" in reasons[1] and "event_id" in reasons[2]


@pytest.mark.parametrize(
    "body",
    ["not json", json.dumps({"records": [record(1)]}), json.dumps({"schema": "tollbooth.usage/v9", "records": []})],
)
def test_a_broken_message_is_rejected_whole(body: str) -> None:
    valid, rejected = parse_message(body)
    assert valid == [] and len(rejected) == 1 and rejected[0].record == body
    assert rejected[0].reason.startswith("message: ")


def test_the_fingerprint_sees_every_field() -> None:
    (first,), _ = parse_message(message_body([record(1)]))
    (same,), _ = parse_message(message_body([record(1)]))
    (other,), _ = parse_message(message_body([record(1, gpu_ms=5)]))
    assert first.fingerprint() == same.fingerprint() != other.fingerprint()


def test_records_pack_into_messages_under_the_size_and_count_limits() -> None:
    big = [record(n, model="m" * 100) for n in range(3000)]
    messages = pack(big)
    assert [r for m in messages for r in m] == big
    assert all(len(message_body(m).encode()) <= MAX_MESSAGE_BYTES for m in messages)
    assert all(len(m) <= MAX_RECORDS_PER_MESSAGE for m in messages)


class FlakySqs:
    """Accepts a message only on its ``fail_times + 1``-th attempt; counts calls."""

    def __init__(self, fail_times: int = 0, raise_first: bool = False) -> None:
        self.fail_times = fail_times
        self.raise_first = raise_first
        self.attempts: dict[str, int] = {}
        self.accepted: list[str] = []
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        assert len(Entries) <= 10 and sum(len(e["MessageBody"].encode()) for e in Entries) <= 262_144
        if self.raise_first and self.calls == 1:
            raise aws_error("RequestThrottled", 403)
        failed = []
        for entry in Entries:
            seen = self.attempts.get(entry["MessageBody"], 0)
            self.attempts[entry["MessageBody"]] = seen + 1
            if seen < self.fail_times:
                failed.append({"Id": entry["Id"], "Code": "InternalError", "SenderFault": False})
            else:
                self.accepted.append(entry["MessageBody"])
        return {"Successful": [], "Failed": failed}


def sent_records(sqs: FlakySqs) -> list[str]:
    return [r["event_id"] for body in sqs.accepted for r in json.loads(body)["records"]]


def test_the_client_sends_ten_messages_per_call_and_retries_what_failed() -> None:
    sqs = FlakySqs(fail_times=2, raise_first=True)
    client = UsageClient("q", sqs, sleep=lambda _: None)
    records = [record(n, model="m" * 128) for n in range(3000)]
    report = client.send(records)
    assert sorted(sent_records(sqs)) == sorted(r["event_id"] for r in records)
    assert report.messages == len(sqs.accepted) and report.retries >= 2


def test_the_client_never_drops_a_record_silently() -> None:
    sqs = FlakySqs(fail_times=100)
    client = UsageClient("q", sqs, max_attempts=3, sleep=lambda _: None)
    with pytest.raises(UsageNotSent) as failure:
        client.send([record(n) for n in range(25)])
    assert sorted(r["event_id"] for r in failure.value.records) == sorted(f"e{n}" for n in range(25))


def test_the_client_refuses_invalid_records_before_sending_and_names_each_by_index() -> None:
    sqs = FlakySqs()
    with pytest.raises(InvalidUsage, match="quantity") as refused:
        UsageClient("q", sqs).send([record(1), record(2, quantity=-1), record(3), {"event_id": "e4"}])
    assert sorted(refused.value.problems) == [1, 3] and "record 1: quantity" in str(refused.value)
    assert isinstance(refused.value, ValueError)
    assert sqs.calls == 0


class FailingSqs(FlakySqs):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    "error",
    [NoCredentialsError(), aws_error("AccessDenied", 403), aws_error("AWS.SimpleQueueService.NonExistentQueue", 400)],
)
def test_an_error_that_would_recur_is_not_retried_and_is_the_cause(error: Exception) -> None:
    sqs = FailingSqs(error)
    with pytest.raises(UsageNotSent) as failure:
        UsageClient("q", sqs, sleep=lambda _: None).send([record(n) for n in range(3)])
    assert sqs.calls == 1
    assert failure.value.__cause__ is error
    assert [r["event_id"] for r in failure.value.records] == ["e0", "e1", "e2"]


@pytest.mark.parametrize("error", [aws_error("ThrottlingException", 400), aws_error("InternalError", 500)])
def test_throttling_and_server_errors_are_retried_and_the_last_is_the_cause(error: Exception) -> None:
    sqs = FailingSqs(error)
    with pytest.raises(UsageNotSent) as failure:
        UsageClient("q", sqs, max_attempts=3, sleep=lambda _: None).send([record(1)])
    assert sqs.calls == 3 and failure.value.__cause__ is error


def test_messages_go_ten_per_call_within_the_batch_size_limit() -> None:
    small = [(n, "x" * 100) for n in range(25)]
    assert [len(batch) for batch in UsageClient._batches(small)] == [10, 10, 5]
    large = [(n, "x" * 100_000) for n in range(5)]
    assert [len(batch) for batch in UsageClient._batches(large)] == [2, 2, 1]
    sqs = FlakySqs()
    report = UsageClient("q", sqs).send([record(n) for n in range(24 * MAX_RECORDS_PER_MESSAGE)])
    assert report.messages == 24 and report.calls == sqs.calls


class RefusingSqs(FlakySqs):
    """Refuses one message for good (the sender's fault), takes the others."""

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        failed = []
        for entry in Entries:
            if '"e0"' in entry["MessageBody"]:
                failed.append({"Id": entry["Id"], "Code": "InvalidMessageContents", "SenderFault": True})
            else:
                self.accepted.append(entry["MessageBody"])
        return {"Successful": [], "Failed": failed}


def test_a_refused_message_is_reported_and_the_rest_are_still_sent() -> None:
    sqs = RefusingSqs()
    records = [record(n, model="m" * 128) for n in range(3000)]
    with pytest.raises(UsageNotSent) as failure:
        UsageClient("q", sqs, sleep=lambda _: None).send(records)
    unsent = {r["event_id"] for r in failure.value.records}
    assert "e0" in unsent and "InvalidMessageContents" in failure.value.reason
    # Every record is either sent or reported, never neither
    assert unsent | set(sent_records(sqs)) == {r["event_id"] for r in records}
    assert not unsent & set(sent_records(sqs))
