"""SQS event source mappings for the local stack, done the way Lambda's poller does them.

For each ``AWS::Lambda::EventSourceMapping`` on an SQS queue in template.yaml: receive up
to ``BatchSize`` messages (waiting up to ``MaximumBatchingWindowInSeconds`` to fill the
batch), invoke the function with an SQS event, delete the messages it did not report in
``batchItemFailures`` (all of them, if it crashed, stay). What stays becomes visible
again after the queue's visibility timeout (or ``USAGE_RETRY_SECONDS``, to retry sooner
locally), and the queue's redrive policy moves it to the dead-letter queue after
``maxReceiveCount`` receives, as on AWS.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tollbooth_local.aws import REGION, client


@dataclass(frozen=True)
class QueueSource:
    function_id: str
    queue_url: str
    queue_arn: str
    batch_size: int
    window_seconds: int
    report_failures: bool  # FunctionResponseTypes has ReportBatchItemFailures


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as Lambda hands it to a function."""
    attributes = {key[0].lower() + key[1:]: value for key, value in message.get("MessageAttributes", {}).items()}
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in attributes.items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class QueuePoller:
    def __init__(
        self,
        source: QueueSource,
        aws_url: str,
        invoke: Callable[[str, dict[str, Any]], Any],
        retry_seconds: int | None = None,
    ) -> None:
        self.source = source
        self._sqs = client("sqs", aws_url)
        self._invoke = invoke
        self._retry_seconds = retry_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"poller-{source.function_id}", daemon=True)

    def start(self) -> QueuePoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.source.window_seconds
        while len(batch) < self.source.batch_size and not self._stopped.is_set():
            reply = self._sqs.receive_message(
                QueueUrl=self.source.queue_url,
                MaxNumberOfMessages=min(10, self.source.batch_size - len(batch)),
                WaitTimeSeconds=0 if batch else 1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = reply.get("Messages", [])
            batch += messages
            if (not messages and batch) or time.monotonic() >= deadline:
                break
        return batch

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                batch = self._receive_batch()
                if batch:
                    self._deliver(batch)
            except Exception:  # keep polling, as the managed poller does
                traceback.print_exc()
                self._stopped.wait(1)

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_record(message, self.source.queue_arn) for message in batch]}
        try:
            result = self._invoke(self.source.function_id, event)
            if self.source.report_failures and isinstance(result, dict):
                failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
            else:
                failed = set()
        except Exception:  # the function crashed: the whole batch stays on the queue
            traceback.print_exc()
            failed = {message["MessageId"] for message in batch}
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ]
            self._sqs.delete_message_batch(QueueUrl=self.source.queue_url, Entries=entries)
        if self._retry_seconds is not None:
            for message in batch:
                if message["MessageId"] in failed:
                    self._sqs.change_message_visibility(
                        QueueUrl=self.source.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self._retry_seconds,
                    )
