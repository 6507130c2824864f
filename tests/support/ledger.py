"""What the ledger tests share: a pinnable clock, the conservation check, recording fakes,
and the use cases called as a client would call them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from tollbooth.app.idempotency import Idempotency
from tollbooth.app.ports import LedgerStore
from tollbooth.app.service import LedgerService
from tollbooth.domain import ids
from tollbooth.domain.catalog import load_history
from tollbooth.domain.clock import now_ms
from tollbooth.domain.errors import StorageUnavailable
from tollbooth.domain.slices import pooled


class Clock:
    """Real time unless a test pins it."""

    def __init__(self) -> None:
        self.pinned: int | None = None

    def __call__(self) -> int:
        return now_ms() if self.pinned is None else self.pinned

    @classmethod
    def at(cls, moment: int) -> Clock:
        """A clock pinned at ``moment`` (ms)."""
        pinned = cls()
        pinned.pinned = moment
        return pinned


ACCOUNT = "acct-1"
# Tests that race many writers on one account assert correctness, not speed: a slow engine
# on a loaded machine must not turn a lost race into a 409.
CONTENTION_BUDGET = 120.0


def assert_conserved(repository: LedgerStore, account_id: str = ACCOUNT) -> None:
    """Lots, slices and every stream of entries agree: nothing lost, nothing created."""
    account = repository.load_account(account_id)
    # The account's own side: what it moved into slices is owed to them.
    assert account.balance == (
        account.granted
        + account.adjusted
        + account.reversed
        - account.consumed
        - account.expired
        - account.clawed_back
        - account.voided
        - account.escrowed
    )
    owed = 0 if account.intent is None else account.intent.owed
    # Open holds: their credits left the lots, and each hold holds what the account says.
    assert account.balance == sum(lot.remaining for lot in account.lots) + account.held - owed - account.arrears
    for ref in account.holds:
        hold = repository.find_hold(account_id, ref.hold_id)
        assert hold is not None and hold.status == "open" and hold.held == ref.credits
        assert all(0 < portion.remaining <= portion.granted for portion in hold.portions)
    assert all(0 < lot.remaining <= lot.granted for lot in account.lots)
    # Each slice holds what it received less what it spent, in its portions and its open
    # holds; one with no escrow holds nothing.
    received = {escrow.index: escrow.received for escrow in account.escrow}
    for held in account.slices:
        assert held.total == received.get(held.index, 0) - held.consumed
        assert all(0 < portion.remaining <= portion.granted for portion in held.portions)
        for ref in held.holds:
            hold = repository.find_hold(account_id, ref.hold_id)
            assert hold is not None and hold.status == "open" and hold.held == ref.credits
            assert ids.hold_slice(hold.hold_id) == held.index
    assert set(received) <= {held.index for held in account.slices} <= set(account.streams)
    whole = pooled(account)
    assert whole.balance == (
        whole.granted
        + whole.adjusted
        + whole.reversed
        - whole.consumed
        - whole.expired
        - whole.clawed_back
        - whole.voided
    )
    assert all(lot.remaining <= lot.granted for lot in whole.lots)
    # Every stream numbers its entries 1, 2, 3...; all of them add up to the whole balance.
    streams = {None: account.seq} | {held.index: held.seq for held in account.slices}
    total = 0
    for stream, last in streams.items():
        page = repository.list_entries(account_id, 1000, stream=stream)
        assert [entry.seq for entry in page.entries] == list(range(last, 0, -1))
        assert all(entry.slice == stream for entry in page.entries)
        total += sum(entry.amount for entry in page.entries)
        if stream is None and page.entries and not account.streams:
            assert page.entries[0].balance_after == account.balance
    assert total == whole.balance


class Recorder:
    """Publishes into a list; can be told to fail, as EventBridge might."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.batches: list[list[dict[str, Any]]] = []  # each call's events
        self.failing = False
        self._lock = threading.Lock()

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        if self.failing:
            raise StorageUnavailable("EventBridge is down")
        with self._lock:
            self.events.extend(events)
            self.batches.append(list(events))

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


def ledger_over(
    store: LedgerStore,
    clock: Clock,
    attempts: int = 10,
    *,
    backoff: bool = False,
    hot_slices: int = 0,
    publisher: Recorder | None = None,
    sleep: Callable[[float], None] | None = None,
) -> LedgerService:
    """The use cases over ``store``; a lost race retries at once unless ``backoff`` (racing
    threads) or ``sleep`` (how it waits); ``hot_slices``: a contended account's consumes
    spread over that many slices; ``publisher``: where a request's events go right after it
    (else the sweep's)."""
    if sleep is None:
        sleep = time.sleep if backoff else (lambda _: None)
    return LedgerService(
        store,
        load_history(),
        now=clock,
        max_write_attempts=attempts,
        sleep=sleep,
        hot_slices=hot_slices,
        publisher=publisher,
    )


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
