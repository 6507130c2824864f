"""The DynamoDB engines every DynamoDB-facing test runs on, and the sample events."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tollbooth_local.template import REPO_ROOT

EVENTS_DIR = REPO_ROOT / "events"


CACHE_DIR = REPO_ROOT / ".local" / "cache"


ENGINES = ["moto", "dynamodb-local"]


@dataclass(frozen=True)
class Engine:
    name: str
    dynamodb_url: str
    # DynamoDB (and moto) take 100 items per transaction; the DynamoDB Local build we run, 10.
    max_transaction_items: int = 100


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
