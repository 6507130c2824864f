"""Scheduled entry points: the expiry sweep, wired with the same Powertools utilities as the API."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollbooth.events import EventBridgePublisher
from tollbooth.expiry import ExpirySweeper
from tollbooth.observability import count, logger, metrics, tracer
from tollbooth.repository import Repository
from tollbooth.settings import get_settings

# Stop this long before the function's timeout; what is left waits for the next run.
TIME_RESERVE_MS = 15_000


@cache
def get_sweeper() -> ExpirySweeper:
    settings = get_settings()
    if not settings.event_bus_name:
        raise RuntimeError("EVENT_BUS_NAME is not set; the expiry function publishes to it")
    publisher = EventBridgePublisher(
        settings.event_bus_name, lambda: boto3.client("events", region_name=settings.region)
    )
    repository = Repository(settings.table_name, settings.region, expiry=settings.expiry_indexing)
    return ExpirySweeper(repository, publisher, settings.expiry_indexing)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def expiry_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The schedule's event carries nothing we need: every run sweeps whatever is due now,
    # so duplicated, overlapping or late events are harmless.
    report = get_sweeper().sweep(time_left=context.get_remaining_time_in_millis, reserve_ms=TIME_RESERVE_MS)
    count("LotsExpired", report.expired_lots)
    count("ExpiryWarnings", report.warned_lots)
    count("ExpiryAccountsFailed", report.failures)
    logger.info("expiry sweep", extra=report.as_dict())
    return report.as_dict()
