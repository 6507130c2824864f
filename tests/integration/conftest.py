from __future__ import annotations

import pytest

from tests.conftest import Engine
from tollbooth.catalog import load_history
from tollbooth.clock import now_ms
from tollbooth.operations import LedgerService
from tollbooth.repository import Repository


class Clock:
    """Real time unless a test pins it."""

    def __init__(self) -> None:
        self.pinned: int | None = None

    def __call__(self) -> int:
        return now_ms() if self.pinned is None else self.pinned


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repository(engine: Engine, table_name: str) -> Repository:
    return Repository(table_name, "us-east-1", endpoint_url=engine.dynamodb_url)


@pytest.fixture
def service(repository: Repository, clock: Clock) -> LedgerService:
    return LedgerService(repository, load_history(), now=clock, max_write_attempts=30)
