"""What the ledger tests share: a pinnable clock, the conservation check, recording fakes,
and the use cases called as a client would call them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tollbooth.app.idempotency import Idempotency
from tollbooth.app.ports import LedgerStore
from tollbooth.app.service import LedgerService
from tollbooth.domain.catalog import load_history
from tollbooth.domain.clock import now_ms
from tollbooth.domain.errors import StorageUnavailable


class Clock:
    """Real time unless a test pins it."""

    def __init__(self) -> None:
        self.pinned: int | None = None

    def __call__(self) -> int:
        return now_ms() if self.pinned is None else self.pinned


ACCOUNT = "acct-1"
# Tests that race many writers on one account assert correctness, not speed: a slow engine
# on a loaded machine must not turn a lost race into a 409.
CONTENTION_BUDGET = 120.0


def assert_conserved(repository: LedgerStore, account_id: str = ACCOUNT) -> None:
    account = repository.load_account(account_id)
    assert account.balance == account.granted - account.consumed - account.expired - account.clawed_back
    owed = 0 if account.intent is None else sum(draw.amount for draw in account.intent.draws)
    assert account.balance == sum(lot.remaining for lot in account.lots) - owed - account.arrears
    assert all(0 < lot.remaining <= lot.granted for lot in account.lots)
    page = repository.list_entries(account_id, 1000)
    assert [entry.seq for entry in page.entries] == list(range(account.seq, 0, -1))
    assert sum(entry.amount for entry in page.entries) == account.balance
    if page.entries:
        assert page.entries[0].balance_after == account.balance


class Recorder:
    """Publishes into a list; can be told to fail, as EventBridge might."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.failing = False
        self._lock = threading.Lock()

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        if self.failing:
            raise StorageUnavailable("EventBridge is down")
        with self._lock:
            self.events.extend(events)

    def ids(self, kind: str) -> list[str]:
        return [event["event_id"] for event in self.events if event["type"] == kind]


class DeadLetterBox:
    def __init__(self) -> None:
        self.sent: list[tuple[dict, list[str], str]] = []
        self._lock = threading.Lock()

    def send(self, body: str, reasons: list[str], source_message_id: str) -> None:
        with self._lock:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {"raw": body}
            self.sent.append((parsed, reasons, source_message_id))


def usage(event_id: str, account: str, credits: int = 1, **extra: Any) -> dict[str, Any]:
    """A usage record (the SQS contract's) for text_generation worth ``credits`` credits."""
    return {
        "event_id": event_id,
        "account_id": account,
        "feature": "text_generation",
        "quantity": credits * 500,
        "occurred_at": "2027-01-31T12:00:00Z",
        "worker_id": "w1",
        **extra,
    }


# -- the use cases, as a client calls them ----------------------------------------


def ledger_over(store: LedgerStore, clock: Clock, attempts: int = 10, *, backoff: bool = False) -> LedgerService:
    """The use cases over ``store``; a lost race retries at once unless ``backoff`` (racing threads)."""
    sleep = time.sleep if backoff else (lambda _: None)
    return LedgerService(store, load_history(), now=clock, max_write_attempts=attempts, sleep=sleep)


def buy(ledger: LedgerService, account: str, package_id: str, reference: str):  # type: ignore[no-untyped-def]
    body = {"package_id": package_id, "payment_reference": reference}
    return ledger.purchase(account, package_id, reference, Idempotency.of(reference, "purchase", account, body))


def grant(ledger: LedgerService, account: str, credits: int, key: str, expires_at: int | None = None):  # type: ignore[no-untyped-def]
    expiry = None if expires_at is None else datetime.fromtimestamp(expires_at / 1000, UTC)
    idem = Idempotency.of(key, "grant", account, {"credits": credits, "key": key})
    return ledger.grant(account, credits * 1000, "promotional", "test", expiry, None, idem)


def words(ledger: LedgerService, account: str, credits: int, key: str, body_extra: int = 0):  # type: ignore[no-untyped-def]
    quantity = credits * 500  # text_generation: 1 credit per 500 words
    idem = Idempotency.of(key, "consume", account, {"quantity": quantity + body_extra})
    return ledger.consume(account, "text_generation", quantity, {}, idem)
