"""Ledger rules with no AWS: burn-down order, expiry at the exact instant, allocation."""

import pytest

from tollbooth.errors import InsufficientCredits
from tollbooth.ledger import (
    Account,
    Draw,
    IdempotencyRecord,
    LedgerEntry,
    Lot,
    Mutation,
    allocate,
    burn_down_order,
    next_expiry,
)

T = 1_800_000_000_000  # a fixed "now" in epoch ms


def lot(lot_id: str, remaining: int, expires_at: int | None = None, priority: int = 50, created_at: int = 0) -> Lot:
    return Lot(lot_id, "purchase", remaining, remaining, created_at, expires_at, priority)


def test_earliest_expiry_first_never_expiring_last() -> None:
    lots = [lot("never", 1), lot("late", 1, T + 20), lot("soon", 1, T + 10)]
    assert [x.lot_id for x in burn_down_order(lots)] == ["soon", "late", "never"]


def test_ties_go_to_lower_priority_then_older_lot() -> None:
    lots = [
        lot("young-p10", 1, T + 5, priority=10, created_at=2),
        lot("p50", 1, T + 5, priority=50, created_at=0),
        lot("old-p10", 1, T + 5, priority=10, created_at=1),
    ]
    assert [x.lot_id for x in burn_down_order(lots)] == ["old-p10", "young-p10", "p50"]


def test_a_lot_is_spendable_until_one_millisecond_before_its_expiry_and_not_at_it() -> None:
    expiring = lot("a", 100, expires_at=T)
    assert expiring.spendable_at(T - 1)
    assert not expiring.spendable_at(T)
    assert not expiring.spendable_at(T + 1)


def test_allocation_spans_lots_in_burn_down_order() -> None:
    account = Account(
        "acct", version=3, balance=350, lots=(lot("never", 200), lot("soon", 100, T + 10), lot("mid", 50, T + 20))
    )
    assert allocate(account, 170, T) == (Draw("soon", 100), Draw("mid", 50), Draw("never", 20))


def test_allocation_skips_lots_expired_at_this_instant() -> None:
    account = Account("acct", balance=150, lots=(lot("dead", 100, expires_at=T), lot("live", 50)))
    assert allocate(account, 50, T) == (Draw("live", 50),)
    with pytest.raises(InsufficientCredits) as failure:
        allocate(account, 51, T)
    assert (failure.value.required, failure.value.available) == (51, 50)
    assert allocate(account, 150, T - 1) == (Draw("dead", 100), Draw("live", 50))


def test_next_expiry_sums_lots_expiring_at_the_same_instant() -> None:
    account = Account("acct", lots=(lot("a", 10, T + 5), lot("b", 20, T + 5), lot("c", 40, T + 9), lot("d", 1)))
    upcoming = next_expiry(account, T)
    assert upcoming is not None and (upcoming.expires_at, upcoming.amount) == (T + 5, 30)
    assert next_expiry(Account("acct", lots=(lot("d", 1),)), T) is None


def test_mutations_keep_the_conservation_law() -> None:
    account = Account("acct", version=4, balance=70, granted=100, consumed=30, expired=0, lots=(lot("a", 70),))
    idem = IdempotencyRecord("k", "f", 200, {}, 5)
    debit = Mutation(account, LedgerEntry("e", 5, "consume", -20, 50, T), idem, (Draw("a", 20),))
    after = debit.account_after
    assert after.version == 5
    assert after.balance == after.granted - after.consumed - after.expired == 50
    credit = Mutation(after, LedgerEntry("g", 6, "grant", 25, 75, T), idem, new_lots=(lot("b", 25),))
    assert credit.account_after.balance == credit.account_after.granted - credit.account_after.consumed == 75
