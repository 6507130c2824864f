"""One structured log line per committed ledger entry, and credits as metrics: what operations
read. No token, no AWS account number (a service shows as its role's name)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.support.ledger import Clock, grant, ledger_over, words
from tollbooth.adapters.memory import MemoryStore
from tollbooth.app import audit
from tollbooth.app.context import Caller, RequestContext
from tollbooth.app.idempotency import Idempotency
from tollbooth.domain import clock as clocks
from tollbooth.domain.errors import InsufficientCredits

NOW = clocks.from_datetime(datetime(2027, 2, 1, tzinfo=UTC))
SERVICE = Caller("service", "arn:aws:sts::123456789012:assumed-role/product-backend/session-1")


class Lines:
    """Stands in for the Powertools logger: what it was asked to log."""

    def __init__(self) -> None:
        self.lines: list[dict] = []  # type: ignore[type-arg]

    def info(self, message: str, extra: dict) -> None:  # type: ignore[type-arg]
        self.lines.append({"message": message, **extra})

    def exception(self, message: str, extra: dict) -> None:  # type: ignore[type-arg]
        raise AssertionError(message)


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Lines:
    lines = Lines()
    monkeypatch.setattr(audit, "logger", lines)
    return lines


def printed(capfd: pytest.CaptureFixture[str]) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]


def test_each_committed_entry_is_one_log_line_and_its_credits_are_counted(
    capfd: pytest.CaptureFixture[str], logged: Lines
) -> None:
    clock = Clock()
    clock.pinned = NOW
    ledger = ledger_over(MemoryStore(), clock)
    grant(ledger, "a", 10, "fund")
    capfd.readouterr()
    # When a service consumes 3 credits for the account
    idem = Idempotency.of("use-1", "consume", "a", {"quantity": 1500})
    ledger.consume("a", "text_generation", 1500, {}, idem, context=RequestContext(SERVICE, "req-1"))
    output = printed(capfd)
    # Then one log line names the account, kind, credits, entry, key and the caller's role
    (line,) = [x for x in logged.lines if x["kind"] == "consume"]
    assert {k: line[k] for k in ("account_id", "kind", "credits", "idempotency_key", "caller")} == {
        "account_id": "a",
        "kind": "consume",
        "credits": -3000,
        "idempotency_key": "use-1",
        "caller": {"kind": "service", "id": "product-backend"},
    }
    assert line["entry_id"].startswith("led_") and "123456789012" not in json.dumps([output, logged.lines])
    # And the credits are a metric by feature
    (by_feature,) = [x for x in output if "CreditsConsumedByFeature" in x]
    assert by_feature["CreditsConsumedByFeature"] == [3000.0] and by_feature["feature"] == "text_generation"


def test_a_refused_request_logs_no_ledger_entry(logged: Lines) -> None:
    clock = Clock()
    clock.pinned = NOW
    ledger = ledger_over(MemoryStore(), clock)
    with pytest.raises(InsufficientCredits):
        words(ledger, "a", 5, "k")
    assert logged.lines == []


def test_a_hot_accounts_refills_and_recalls_are_counted(monkeypatch: pytest.MonkeyPatch, logged: Lines) -> None:
    counted: list[str] = []
    monkeypatch.setattr(audit, "count", lambda metric, value=1: counted.append(metric))
    clock = Clock()
    clock.pinned = NOW
    ledger = ledger_over(MemoryStore(), clock, hot_slices=4)
    grant(ledger, "a", 100, "fund")
    # When a consume is served by a slice (which a refill fills), then a grant recalls it
    idem = Idempotency.of("use-1", "consume", "a", {"quantity": 500})
    ledger.consume("a", "text_generation", 500, {}, idem, sliced=True)
    grant(ledger, "a", 1, "more")
    # Then each refill and each recall is counted, and the slice's consume is logged too
    assert counted.count("EscrowRefills") == 1 and counted.count("EscrowRecalls") == 4
    assert [line["kind"] for line in logged.lines] == ["grant", "consume", "grant"]
