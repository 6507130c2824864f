from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.engines import Engine
from tests.support.functions import deployed_environment
from tests.support.ledger import CONTENTION_BUDGET, Clock
from tollbooth.adapters.dynamodb import Repository
from tollbooth.app.service import LedgerService
from tollbooth.domain.catalog import load_history
from tollbooth_local.aws import MotoServer


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
    return LedgerService(repository, load_history(), now=clock, max_write_attempts=30, write_budget=CONTENTION_BUDGET)


@pytest.fixture
def deployed_like(engine: Engine, table_name: str, moto_server: MotoServer) -> Iterator[None]:
    """The functions' environment as template.yaml gives it, on this engine's table."""
    with deployed_environment(engine, table_name, moto_server):
        yield
