"""The one composition root: which adapter serves which port, built from settings on first
use (never at import) and kept for the life of the Lambda container."""

from __future__ import annotations

from functools import cache

import boto3

from tollbooth.adapters.dynamodb import Repository
from tollbooth.adapters.eventbridge import EventBridgePublisher
from tollbooth.adapters.sqs import SqsDeadLetters
from tollbooth.app.ingestion import UsageIngestor
from tollbooth.app.service import LedgerService
from tollbooth.app.sweep import ExpirySweeper
from tollbooth.domain.catalog import load_history
from tollbooth.settings import get_settings


@cache
def get_store() -> Repository:
    settings = get_settings()
    return Repository(
        settings.table_name,
        settings.region,
        expiry=settings.expiry_indexing,
        max_transaction_items=settings.max_transaction_items,
    )


@cache
def get_service() -> LedgerService:
    return LedgerService(get_store(), load_history(), max_write_attempts=get_settings().max_write_attempts)


@cache
def get_publisher() -> EventBridgePublisher:
    settings = get_settings()
    if not settings.event_bus_name:
        raise RuntimeError("EVENT_BUS_NAME is not set; this function publishes to it")
    return EventBridgePublisher(settings.event_bus_name, lambda: boto3.client("events", region_name=settings.region))


@cache
def get_sweeper() -> ExpirySweeper:
    settings = get_settings()
    return ExpirySweeper(get_store(), get_publisher(), settings.expiry_indexing)


@cache
def get_ingestor() -> UsageIngestor:
    settings = get_settings()
    if not settings.usage_dlq_url:
        raise RuntimeError("USAGE_DLQ_URL is not set; rejected usage goes there")
    dead_letters = SqsDeadLetters(settings.usage_dlq_url, lambda: boto3.client("sqs", region_name=settings.region))
    return UsageIngestor(get_service(), get_publisher(), dead_letters)


def reset() -> None:
    """Forget everything built, settings included (tests and benchmarks that change the
    environment between runs; a Lambda container never needs it)."""
    for built in (get_settings, get_store, get_service, get_publisher, get_sweeper, get_ingestor):
        built.cache_clear()
