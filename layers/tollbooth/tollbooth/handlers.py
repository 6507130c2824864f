"""Entry points that are not HTTP: the scheduled expiry sweep and the SQS usage consumer,
wired with the same Powertools utilities as the API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollbooth import tracing
from tollbooth.bootstrap import get_ingestor, get_sweeper
from tollbooth.observability import count, logger, metrics
from tollbooth.settings import get_settings

# Stop this long before the function's timeout; what is left waits for the next run.
TIME_RESERVE_MS = 15_000


class RetryLater(Exception):
    """Raised for a message to leave on the queue: SQS delivers it again."""


@logger.inject_lambda_context
@tracing.capture_lambda_handler
@metrics.log_metrics
def expiry_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The schedule's event carries nothing we need: every run sweeps whatever is due now,
    # so duplicated, overlapping or late events are harmless.
    report = get_sweeper().sweep(time_left=context.get_remaining_time_in_millis, reserve_ms=TIME_RESERVE_MS)
    count("LotsExpired", report.expired_lots)
    count("ExpiryWarnings", report.warned_lots)
    count("ExpiryAccountsFailed", report.failures)
    count("ExpiryShardsFailed", report.shards_failed)
    count("OutboxBacklog", report.outbox_backlog)
    # A run that ran out of time leaves due work to the next: several an hour means lag.
    count("ExpirySweepsIncomplete", 0 if report.complete else 1)
    logger.info("expiry sweep", extra=report.as_dict())
    return report.as_dict()


processor = BatchProcessor(event_type=EventType.SQS)


def on_last_receive(records: list[dict[str, Any]]) -> set[str]:
    """The messages SQS moves to the dead-letter queue if they fail this time."""
    limit = get_settings().usage_max_receives
    last = set()
    for record in records:
        received = str((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
        if received.isdigit() and int(received) >= limit:
            last.add(record["messageId"])
    return last


@logger.inject_lambda_context
@tracing.capture_lambda_handler
@metrics.log_metrics
def usage_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Records of one account are charged together across the whole batch, so the batch is
    # ingested first; the processor then reports, per message, what must be retried.
    records = event.get("Records", [])
    messages = [(record["messageId"], record["body"]) for record in records]
    retry, report = get_ingestor().ingest(messages, last_receive=on_last_receive(records))
    count("UsageRecordsCharged", report.charged)
    count("UsageRecordsDuplicate", report.duplicates)
    logger.info("usage batch", extra=report.as_dict())

    def record_handler(record: SQSRecord) -> None:
        if record.message_id in retry:
            raise RetryLater(retry[record.message_id])

    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
