"""Shared fixtures: the two DynamoDB engines every DynamoDB-facing test runs on.

``moto`` is moto's server on loopback (requests serialized, see tollbooth_local.aws);
``dynamodb-local`` is AWS's own engine, fetched by ``make install`` into .local/cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.engines import CACHE_DIR, ENGINES, Engine
from tollbooth_local.aws import MotoServer, create_table, use_offline_environment
from tollbooth_local.dynamodb_local import DynamoDBLocal
from tollbooth_local.template import Template


@pytest.fixture(scope="session", autouse=True)
def fake_aws_environment() -> None:
    # Never reach a real AWS account from tests, whatever the developer's shell holds.
    use_offline_environment()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    engine = DynamoDBLocal(CACHE_DIR).start()
    yield engine
    engine.stop()


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "moto":
        return Engine("moto", request.getfixturevalue("moto_server").url)
    return Engine("dynamodb-local", request.getfixturevalue("dynamodb_local").url, max_transaction_items=10)


@pytest.fixture
def table_name(engine: Engine) -> str:
    """A fresh ledger table, created from template.yaml's own definition."""
    name = f"ledger-{uuid.uuid4().hex[:12]}"
    spec = Template().resources["LedgerTable"]["Properties"]
    create_table(engine.dynamodb_url, name, spec)
    return name
