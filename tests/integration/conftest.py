from __future__ import annotations

import pytest

from tests.support.engines import Engine
from tests.support.ledger import Clock
from tollbooth.adapters.dynamodb import Repository
from tollbooth.app.service import LedgerService
from tollbooth.domain.catalog import load_history


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repository(engine: Engine, table_name: str) -> Repository:
    return Repository(
        table_name, "us-east-1", endpoint_url=engine.dynamodb_url, max_transaction_items=engine.max_transaction_items
    )


@pytest.fixture
def service(repository: Repository, clock: Clock) -> LedgerService:
    return LedgerService(repository, load_history(), now=clock, max_write_attempts=30)
