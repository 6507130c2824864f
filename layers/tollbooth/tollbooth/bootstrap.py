"""The one composition root: which adapter serves which port, built from settings on first
use (never at import) and kept for the life of the Lambda container.

The adapters, and with them botocore and PynamoDB, are imported on first use too: a
function that never reaches the store (the catalog) never pays for them. Every AWS client
comes from one botocore session (per thread), PynamoDB's included: PynamoDB would otherwise
make a session per connection, and each new session parses the service models again (the
store has two connections, so a cold start paid for that twice). With SnapStart, the clients
built before the snapshot are dropped after a restore (``after_restore``), and ``random`` is
re-seeded, so restored copies neither share connections nor retry in step.
"""

from __future__ import annotations

import random
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from tollbooth.settings import get_settings

if TYPE_CHECKING:
    from tollbooth.adapters.dynamodb import Repository
    from tollbooth.adapters.eventbridge import EventBridgePublisher
    from tollbooth.app.ingestion import UsageIngestor
    from tollbooth.app.service import LedgerService
    from tollbooth.app.sweep import ExpirySweeper


class _Sessions(threading.local):
    generation = 0
    session: Any = None


_sessions = _Sessions()
_generation = [0]  # bumped by reset(): every thread then starts a new session
_loader: list[Any] = [None]  # botocore's model loader, kept across sessions (a pure cache)


def botocore_session() -> Any:
    """This thread's botocore session, which PynamoDB's connections share (botocore sessions
    are not thread-safe; Lambda runs one invocation at a time, tests may use threads)."""
    import pynamodb.connection.base as pynamodb_connection
    from botocore.client import BaseClient

    from tollbooth import tracing

    tracing.instrument_botocore(BaseClient)
    make_session = pynamodb_connection.get_session
    if not getattr(make_session, "tollbooth_shared", False):

        def shared() -> Any:
            if _sessions.session is None or _sessions.generation != _generation[0]:
                session = make_session()
                if _loader[0] is not None:  # the parsed service models: data, no connections
                    session.register_component("data_loader", _loader[0])
                _loader[0] = session.get_component("data_loader")
                _sessions.session, _sessions.generation = session, _generation[0]
            return _sessions.session

        shared.tollbooth_shared = True  # type: ignore[attr-defined]
        pynamodb_connection.get_session = shared  # type: ignore[assignment]
    return pynamodb_connection.get_session()


def _client(service: str) -> Any:
    from botocore.config import Config

    # As the store's calls (adapters.dynamodb.store): within the function's timeout, with
    # throttling and 5xx retried once more before the caller sees the failure.
    timeouts = Config(connect_timeout=1, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 2})
    return botocore_session().create_client(service, region_name=get_settings().region, config=timeouts)


@cache
def get_store() -> Repository:
    from tollbooth.adapters.dynamodb import Repository

    botocore_session()
    settings = get_settings()
    return Repository(
        settings.table_name,
        settings.region,
        expiry=settings.expiry_indexing,
        max_transaction_items=settings.max_transaction_items,
    )


@cache
def get_service() -> LedgerService:
    from tollbooth.app.service import LedgerService
    from tollbooth.domain.catalog import load_history
    from tollbooth.domain.unsettled import keep_at_most

    settings = get_settings()
    keep_at_most(settings.unsettled_lots)
    return LedgerService(
        get_store(),
        load_history(),
        max_write_attempts=settings.max_write_attempts,
        hot_slices=settings.hot_account_slices,
        # A function that changes accounts publishes their events right after the change.
        publisher=get_publisher() if settings.event_bus_name else None,
    )


@cache
def get_publisher() -> EventBridgePublisher:
    from tollbooth.adapters.eventbridge import EventBridgePublisher

    settings = get_settings()
    if not settings.event_bus_name:
        raise RuntimeError("EVENT_BUS_NAME is not set; this function publishes to it")
    return EventBridgePublisher(settings.event_bus_name, lambda: _client("events"))


@cache
def get_sweeper() -> ExpirySweeper:
    from tollbooth.app.sweep import ExpirySweeper

    settings = get_settings()
    return ExpirySweeper(get_store(), get_publisher(), settings.expiry_indexing)


@cache
def get_ingestor() -> UsageIngestor:
    from tollbooth.adapters.sqs import SqsDeadLetters
    from tollbooth.app.ingestion import UsageIngestor

    settings = get_settings()
    if not settings.usage_dlq_url:
        raise RuntimeError("USAGE_DLQ_URL is not set; rejected usage goes there")
    dead_letters = SqsDeadLetters(settings.usage_dlq_url, lambda: _client("sqs"))
    return UsageIngestor(get_service(), get_publisher(), dead_letters)


def reset() -> None:
    """Forget everything built, settings included (tests and benchmarks that change the
    environment between runs, and a SnapStart restore)."""
    for built in (get_settings, get_store, get_service, get_publisher, get_sweeper, get_ingestor):
        built.cache_clear()
    _generation[0] += 1


def before_snapshot() -> None:
    """Prime the snapshot with what every first request would otherwise build, and what
    restored copies may share: the catalog, the adapters' imports, botocore's parsed models.
    No client, credential or connection is kept."""
    get_service()
    _client("dynamodb")
    if get_settings().event_bus_name:  # a function that publishes: EventBridge's model too
        _client("events")
    reset()


def after_restore() -> None:
    """What a copy restored from a SnapStart snapshot does first: draw its own random
    numbers (retry jitter), and build its own session, credentials, clients and connections."""
    random.seed()
    reset()


def register_snapstart_hooks() -> bool:
    """Register the hooks with the runtime's ``snapshot_restore_py``; False where there is no
    such module (the local stack, tests)."""
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return False
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    return True


register_snapstart_hooks()
