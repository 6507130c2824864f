"""The service's retry and replay rules, with an in-memory stand-in for the repository."""

from __future__ import annotations

import pytest

from tollbooth.app.idempotency import Idempotency
from tollbooth.app.ports import WriteConflict
from tollbooth.app.service import LedgerService
from tollbooth.domain.catalog import load_history
from tollbooth.domain.errors import ConcurrentUpdate, IdempotencyKeyReused, InsufficientCredits
from tollbooth.domain.ledger import Account, IdempotencyRecord, Lot, Mutation

NOW = 1_800_000_000_000


class AlwaysBusy:
    """Every write loses the race to another writer."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.loads = 0
        self.writes = 0

    def load_account(self, account_id: str) -> Account:
        self.loads += 1
        return self.account

    def apply(self, mutation: Mutation, now: int) -> None:
        self.writes += 1
        raise WriteConflict(WriteConflict.VERSION)

    def find_idempotency_record(self, account_id: str, key: str) -> IdempotencyRecord | None:
        return None


def funded(credits: int) -> Account:
    lot = Lot("lot", "purchase", credits, credits, 0)
    return Account("acct", version=1, balance=credits, granted=credits, lots=(lot,))


def service_over(repository: object, attempts: int = 4) -> LedgerService:
    sleeps: list[float] = []
    service = LedgerService(
        repository, load_history(), max_write_attempts=attempts, now=lambda: NOW, sleep=sleeps.append
    )  # type: ignore[arg-type]
    service.sleeps = sleeps  # type: ignore[attr-defined]
    return service


def consume(service: LedgerService, key: str = "k", quantity: int = 1) -> object:
    idem = Idempotency.of(key, "consume", "acct", {"quantity": quantity})
    return service.consume("acct", "image_generation", quantity, {}, idem)


def test_contention_is_retried_a_bounded_number_of_times_then_a_clear_error() -> None:
    # Given a store where every write loses the race
    repository = AlwaysBusy(funded(10_000))
    service = service_over(repository, attempts=4)
    # When a consume is attempted, Then it gives up with concurrent_update after 4 writes
    with pytest.raises(ConcurrentUpdate):
        consume(service)
    assert (repository.loads, repository.writes) == (4, 4)
    # And it backed off between attempts, within the cap
    assert len(service.sleeps) == 4 and all(0 <= pause <= 0.2 for pause in service.sleeps)  # type: ignore[attr-defined]


def test_a_replay_is_answered_from_the_record_and_another_body_is_refused() -> None:
    class KeyTaken(AlwaysBusy):
        def apply(self, mutation: Mutation, now: int) -> None:
            raise WriteConflict(WriteConflict.IDEMPOTENCY_KEY)

        def find_idempotency_record(self, account_id: str, key: str) -> IdempotencyRecord | None:
            original = Idempotency.of("k", "consume", "acct", {"quantity": 1})
            return IdempotencyRecord("k", original.fingerprint, 200, {"entry_id": "first"}, 2)

    service = service_over(KeyTaken(funded(10_000)))
    outcome = consume(service, quantity=1)
    assert (outcome.status_code, outcome.body, outcome.replayed) == (200, {"entry_id": "first"}, True)  # type: ignore[attr-defined]
    with pytest.raises(IdempotencyKeyReused):
        consume(service, quantity=2)


def test_insufficient_credits_writes_nothing() -> None:
    repository = AlwaysBusy(funded(1_000))
    with pytest.raises(InsufficientCredits):
        consume(service_over(repository), quantity=2)
    assert repository.writes == 0
