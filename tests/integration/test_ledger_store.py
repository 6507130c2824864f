"""The ledger service against real DynamoDB semantics, on moto and on DynamoDB Local."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.ledger import assert_conserved
from tollbooth.adapters.dynamodb import Repository
from tollbooth.app.idempotency import Idempotency
from tollbooth.app.ports import WriteConflict
from tollbooth.app.service import LedgerService
from tollbooth.domain import clock as clocks
from tollbooth.domain.catalog import load_history
from tollbooth.domain.errors import IdempotencyKeyReused, InsufficientCredits, PaymentReferenceUsed
from tollbooth.domain.ledger import Draw, IdempotencyRecord, LedgerEntry, Mutation

ACCOUNT = "acct-1"


def key(name: str, operation: str = "consume", body: dict | None = None) -> Idempotency:
    return Idempotency.of(name, operation, ACCOUNT, body or {"k": name})


def grant(
    service: LedgerService, credits: int, name: str, expires_at: datetime | None = None, priority: int | None = None
) -> dict:
    body = {"credits": credits, "expires": str(expires_at), "priority": priority}
    milli = credits * 1000
    return service.grant(ACCOUNT, milli, "promotional", "test", expires_at, priority, key(name, "grant", body)).body


def consume(service: LedgerService, quantity: int, name: str, feature: str = "image_generation") -> dict:
    body = {"feature": feature, "quantity": quantity}
    return service.consume(ACCOUNT, feature, quantity, {}, key(name, "consume", body)).body


def test_a_new_account_reads_as_zero(service: LedgerService) -> None:
    balance = service.balance("nobody")
    assert (balance.available, balance.balance, balance.lots, balance.next_expiry) == ("0.000", "0.000", [], None)
    assert service.ledger("nobody", 10, None).entries == []


def test_a_purchase_grants_a_purchase_lot_and_a_bonus_lot(service: LedgerService, repository: Repository) -> None:
    idem = Idempotency.of("buy-1", "purchase", ACCOUNT, {"package_id": "standard", "payment_reference": "pi_1"})
    outcome = service.purchase(ACCOUNT, "standard", "pi_1", idem)
    assert outcome.status_code == 201
    lots = {lot["source"]: lot for lot in outcome.body["lots"]}
    assert lots["purchase"]["granted"] == "5000.000" and lots["purchase"]["price_minor"] == 3999
    assert lots["bonus"]["granted"] == "500.000" and lots["bonus"]["expires_at"] < lots["purchase"]["expires_at"]
    assert outcome.body["balance"] == "5500.000"
    entry = service.ledger(ACCOUNT, 10, None).entries[0]
    assert (entry.kind, entry.amount, entry.payment_reference, entry.idempotency_key) == (
        "purchase",
        "5500.000",
        "pi_1",
        "buy-1",
    )
    assert_conserved(repository)


def test_a_payment_reference_grants_once_whatever_the_key(service: LedgerService, repository: Repository) -> None:
    body = {"package_id": "starter", "payment_reference": "pi_9"}
    first = service.purchase(ACCOUNT, "starter", "pi_9", Idempotency.of("a", "purchase", ACCOUNT, body))
    replay = service.purchase(ACCOUNT, "starter", "pi_9", Idempotency.of("a", "purchase", ACCOUNT, body))
    assert (replay.replayed, replay.body) == (True, first.body)
    with pytest.raises(PaymentReferenceUsed):
        service.purchase(ACCOUNT, "starter", "pi_9", Idempotency.of("b", "purchase", ACCOUNT, body))
    with pytest.raises(PaymentReferenceUsed):  # even on another account
        service.purchase("acct-2", "starter", "pi_9", Idempotency.of("c", "purchase", "acct-2", body))
    assert repository.load_account(ACCOUNT).granted == 1_000_000
    assert repository.load_account("acct-2").version == 0


def test_consume_debits_in_burn_down_order_and_records_everything(
    service: LedgerService, repository: Repository
) -> None:
    grant(service, 5, "never")  # never expires: spent last
    grant(service, 3, "soon", expires_at=datetime(2040, 1, 1, tzinfo=UTC))
    result = consume(service, 4, "use-4")
    assert (result["charged"], result["balance"]) == ("4.000", "4.000")
    entry = service.ledger(ACCOUNT, 1, None).entries[0]
    assert entry.kind == "consume" and entry.feature == "image_generation" and entry.quantity == 4
    assert entry.dimensions == {"resolution": "standard", "style": "basic", "licence": "personal"}
    assert (
        entry.catalog_version == result["catalog_version"] == service.catalogs.versions[-1].version
        and entry.idempotency_key == "use-4"
    )
    lots = {lot.lot_id: lot for lot in repository.load_account(ACCOUNT).lots}
    drawn = {draw.lot_id: draw.amount for draw in entry.draws or []}
    assert sorted(drawn.values()) == ["1.000", "3.000"]
    # The expiring lot gave its last 3 credits and left the store; 4 remain in the other
    assert [(lot.expires_at, lot.remaining) for lot in lots.values()] == [(None, 4000)]
    assert_conserved(repository)


def test_insufficient_credits_debits_nothing(service: LedgerService, repository: Repository) -> None:
    grant(service, 2, "g")
    before = repository.load_account(ACCOUNT)
    with pytest.raises(InsufficientCredits) as failure:
        consume(service, 3, "too-much")
    assert (failure.value.required, failure.value.available) == (3000, 2000)
    assert repository.load_account(ACCOUNT) == before
    assert repository.find_idempotency_record(ACCOUNT, "too-much") is None  # a retry after a top-up may succeed


def test_a_replay_returns_the_first_answer_even_when_credits_ran_out(
    service: LedgerService, repository: Repository
) -> None:
    grant(service, 3, "g")
    first = consume(service, 3, "once")
    again = service.consume(
        ACCOUNT, "image_generation", 3, {}, key("once", "consume", {"feature": "image_generation", "quantity": 3})
    )
    assert again.replayed and again.body == first
    with pytest.raises(IdempotencyKeyReused):
        consume(service, 2, "once")
    assert repository.load_account(ACCOUNT).consumed == 3000
    assert_conserved(repository)


def test_expiry_is_enforced_at_the_exact_millisecond(service: LedgerService, clock, repository: Repository) -> None:
    expires = datetime(2040, 1, 1, tzinfo=UTC)
    grant(service, 1, "expiring", expires_at=expires)
    instant = clocks.from_datetime(expires)
    clock.pinned = instant - 1
    assert consume(service, 1, "just-in-time")["charged"] == "1.000"
    grant(service, 1, "expiring-2", expires_at=expires)
    clock.pinned = instant
    with pytest.raises(InsufficientCredits):
        consume(service, 1, "too-late")
    assert service.balance(ACCOUNT).available == "0.000"
    assert_conserved(repository)


def test_the_store_refuses_a_draw_from_a_lot_that_expired_after_it_was_read(
    service: LedgerService, repository: Repository
) -> None:
    # Given a lot read while it was still spendable
    expires = datetime(2040, 1, 1, tzinfo=UTC)
    grant(service, 1, "expiring", expires_at=expires)
    account = repository.load_account(ACCOUNT)
    lot = account.lots[0]
    instant = clocks.from_datetime(expires)
    entry = LedgerEntry("e", account.seq + 1, "consume", -1000, account.balance - 1000, instant)
    record = IdempotencyRecord("late", "f", 200, {}, entry.seq)
    mutation = Mutation(account, (entry,), (record,), (Draw(lot.lot_id, 1000),))
    # When the write lands at the expiry instant, Then DynamoDB's condition refuses it
    with pytest.raises(WriteConflict):
        repository.apply(mutation, instant)
    assert repository.load_account(ACCOUNT) == account


def test_ledger_pages_newest_first_without_gaps_or_repeats(service: LedgerService) -> None:
    for n in range(7):
        grant(service, 1, f"g{n}")
    seen, cursor = [], None
    while True:
        page = service.ledger(ACCOUNT, 3, cursor)
        seen += [entry.seq for entry in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]


def test_sixteen_threads_never_overdraw_and_conserve_exactly(service: LedgerService, repository: Repository) -> None:
    grant(service, 40, "fund")
    results: Counter[str] = Counter()

    def spend(worker: int) -> None:
        for n in range(5):
            try:
                consume(service, 1, f"w{worker}-{n}")
                results["ok"] += 1
            except InsufficientCredits:
                results["402"] += 1

    threads = [threading.Thread(target=spend, args=(worker,)) for worker in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    account = repository.load_account(ACCOUNT)
    assert results["ok"] == 40 and results["402"] == 40
    assert account.balance == 0 and account.consumed == 40_000
    assert account.version == 1 + results["ok"]
    assert_conserved(repository)


def test_concurrent_replays_of_one_key_charge_once(service: LedgerService, repository: Repository) -> None:
    grant(service, 10, "fund")
    bodies: list[dict] = []

    def replay() -> None:
        bodies.append(consume(service, 2, "same-key"))

    threads = [threading.Thread(target=replay) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(bodies) == 8 and all(body == bodies[0] for body in bodies)
    assert repository.load_account(ACCOUNT).consumed == 2000
    assert_conserved(repository)


def second_container(repository: Repository) -> LedgerService:
    """Another Lambda container: same table, its own remembered account states."""
    return LedgerService(repository, load_history())


def test_a_stale_remembered_state_costs_a_retry_never_a_wrong_balance(
    service: LedgerService, repository: Repository
) -> None:
    other = second_container(repository)
    grant(service, 10, "fund")
    consume(service, 1, "a1")  # this container remembers version 2
    consume_with(other, 2, "b1")  # the other container moves the account on
    consume(service, 3, "a2")  # stale memory: the version guard refuses, a fresh read retries
    assert repository.load_account(ACCOUNT).consumed == 6000
    assert_conserved(repository)


def test_a_refusal_is_never_based_on_a_remembered_balance(service: LedgerService, repository: Repository) -> None:
    other = second_container(repository)
    grant(service, 1, "fund")
    consume(service, 1, "spend-all")  # this container remembers a zero balance
    other.grant(ACCOUNT, 5000, "promotional", "top-up", None, None, key("top-up", "grant"))
    assert consume(service, 4, "after-top-up")["balance"] == "1.000"


def test_a_warm_debit_is_one_request_and_a_cold_one_two(
    service: LedgerService, repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.endpoint

    grant(service, 10, "fund")
    calls: list[str] = []
    send = botocore.endpoint.Endpoint.make_request

    def counting(self: botocore.endpoint.Endpoint, operation_model: Any, request_dict: Any) -> Any:
        calls.append(operation_model.name)
        return send(self, operation_model, request_dict)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", counting)
    consume_with(second_container(repository), 1, "cold")
    assert calls == ["Query", "TransactWriteItems"]
    calls.clear()
    consume(service, 1, "warm-1")  # stale after the other container's write: 1 failed write + read + write
    calls.clear()
    consume(service, 1, "warm-2")
    assert calls == ["TransactWriteItems"]


def consume_with(service: LedgerService, quantity: int, name: str) -> dict:
    body = {"feature": "image_generation", "quantity": quantity}
    return service.consume(ACCOUNT, "image_generation", quantity, {}, key(name, "consume", body)).body
