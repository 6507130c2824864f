"""Shared fixtures: the two DynamoDB engines every DynamoDB-facing test runs on.

``moto`` is moto's server on loopback (requests serialized, see tollbooth_local.aws);
``dynamodb-local`` is AWS's own engine, fetched by ``make install`` into .local/cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tollbooth_local.aws import MotoServer, create_table, use_offline_environment
from tollbooth_local.dynamodb_local import DynamoDBLocal
from tollbooth_local.template import REPO_ROOT, Template

EVENTS_DIR = REPO_ROOT / "events"
CACHE_DIR = REPO_ROOT / ".local" / "cache"
ENGINES = ["moto", "dynamodb-local"]


@pytest.fixture(scope="session", autouse=True)
def fake_aws_environment() -> None:
    # Never reach a real AWS account from tests, whatever the developer's shell holds.
    use_offline_environment()


@dataclass(frozen=True)
class Engine:
    name: str
    dynamodb_url: str
    # DynamoDB (and moto) take 100 items per transaction; the DynamoDB Local build we run, 10.
    max_transaction_items: int = 100


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


def event(name: str) -> dict:
    import json

    return json.loads(Path(EVENTS_DIR / name).read_text())


def worked_examples() -> list[tuple[str, int, dict[str, str], str]]:
    """The rows of the worked-examples table in docs/pricing.md."""
    rows = []
    for line in (REPO_ROOT / "docs" / "pricing.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[1].isdigit():
            continue
        feature, quantity, dims, credits, _ = cells
        dimensions = dict(pair.strip().split("=") for pair in dims.split(",")) if dims else {}
        rows.append((feature, int(quantity), dimensions, credits))
    assert rows, "docs/pricing.md lost its worked examples"
    return rows
