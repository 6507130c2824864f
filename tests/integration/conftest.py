from __future__ import annotations

import pytest

from tests.conftest import Engine
from tollbooth.adapters.dynamodb import Repository
from tollbooth.app.service import LedgerService
from tollbooth.domain.catalog import load_history
from tollbooth.domain.clock import now_ms


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
    return Repository(
        table_name, "us-east-1", endpoint_url=engine.dynamodb_url, max_transaction_items=engine.max_transaction_items
    )


@pytest.fixture
def service(repository: Repository, clock: Clock) -> LedgerService:
    return LedgerService(repository, load_history(), now=clock, max_write_attempts=30)


ACCOUNT = "acct-1"


def assert_conserved(repository: Repository, account_id: str = ACCOUNT) -> None:
    account = repository.load_account(account_id)
    assert account.balance == account.granted - account.consumed - account.expired
    assert account.balance == sum(lot.remaining for lot in account.lots) - account.arrears
    assert all(0 <= lot.remaining <= lot.granted for lot in account.lots)
    page = repository.list_entries(account_id, 1000)
    assert [entry.seq for entry in page.entries] == list(range(account.seq, 0, -1))
    assert sum(entry.amount for entry in page.entries) == account.balance
    if page.entries:
        assert page.entries[0].balance_after == account.balance
