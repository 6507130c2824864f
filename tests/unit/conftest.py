"""The use cases over the in-memory twin at one instant, for the specifications of this tier
that need no more (a module that needs another store or clock defines its own)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.ledger import Clock, ledger_over
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app.service import LedgerService
from tollbooth.domain import clock as clocks

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def clock() -> Clock:
    return Clock.at(NOW)


@pytest.fixture
def ledger(store: MemoryStore, clock: Clock) -> LedgerService:
    return ledger_over(store, clock)
