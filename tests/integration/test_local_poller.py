"""The local stack's SQS poller behaves like Lambda's event source mapping (on moto's SQS)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from tollbooth_local.aws import MotoServer, client
from tollbooth_local.pollers import QueuePoller, QueueSource


def test_partial_batch_failures_are_retried_then_dead_lettered(moto_server: MotoServer) -> None:
    # Given a queue whose redrive policy sends a message to its DLQ after 2 receives
    sqs = client("sqs", moto_server.url)
    name = f"q-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    queue = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    for body in ("good-1", "poison", "good-2"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    batches: list[list[str]] = []
    lock = threading.Lock()

    def function(_: str, event: dict[str, Any]) -> dict[str, Any]:
        # A function that reports the poison message as failed, every time
        with lock:
            batches.append([record["body"] for record in event["Records"]])
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "poison"]
        return {"batchItemFailures": failures}

    source = QueueSource("Fn", queue, f"arn:aws:sqs:us-east-1:123456789012:{name}", 10, 0, True)
    poller = QueuePoller(source, moto_server.url, function, retry_seconds=0).start()
    try:
        deadline = time.monotonic() + 20
        moved: list[dict] = []
        while time.monotonic() < deadline and not moved:
            moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
    finally:
        poller.stop()
    # Then the good messages were delivered once and deleted; the poison one went to the DLQ
    delivered = [body for batch in batches for body in batch]
    assert delivered.count("good-1") == 1 and delivered.count("good-2") == 1
    assert [m["Body"] for m in moved] == ["poison"] and delivered.count("poison") == 2
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", []) == []
