"""``domain.unsettled``: which lot items a mutation writes, and what the account item keeps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tollbooth import bootstrap
from tollbooth.domain import unsettled
from tollbooth.domain.ledger import Account, Draw, Lot, Mutation
from tollbooth.domain.unsettled import LotWrite, as_read, draws_fit, settlement

NOW = 1_767_225_600_000


def lot(lot_id: str, remaining: int, expires_at: int | None = None) -> Lot:
    return Lot(lot_id, "promotional", remaining, remaining, NOW, expires_at)


def test_draws_are_kept_on_the_account_item_newest_last_and_no_lot_item_is_written() -> None:
    account = Account("a", version=3, lots=(lot("l1", 5), lot("l2", 9)), unsettled=(("l2", 1), ("gone", 4)))
    settled = settlement(Mutation(account, draws=(Draw("l2", 2),)), limit=2)
    assert settled.writes == () and settled.unsettled == (("gone", 4), ("l2", 3))


def test_past_the_limit_the_oldest_untouched_lot_is_settled_and_deleted_when_it_holds_no_more() -> None:
    # "gone" holds only its unsettled credits; l1 is flagged by this very change (one
    # transaction writes an item once), so the next oldest after it is settled
    account = Account("a", lots=(lot("l1", 5), lot("l2", 9), lot("l3", 9)), unsettled=(("l1", 1), ("gone", 4)))
    mutation = Mutation(account, draws=(Draw("l2", 9), Draw("l3", 1)), warned=("l1",))
    settled = settlement(mutation, limit=2)
    assert settled.writes == (LotWrite("gone", "transfer", 4, deletes=True), LotWrite("l2", "draw", 9, deletes=True))
    assert settled.unsettled == (("l1", 1), ("l3", 1))


def test_a_write_of_a_lots_item_takes_its_unsettled_credits_with_it() -> None:
    account = Account("a", lots=(lot("l1", 6, NOW),), unsettled=(("l1", 4),))
    settled = settlement(Mutation(account, expirations=(Draw("l1", 6),)))
    assert settled.writes == (LotWrite("l1", "expire", 10, deletes=True),) and settled.unsettled == ()


def test_a_lot_made_again_is_put_over_its_old_item_and_leaves_the_list() -> None:
    account = Account("a", lots=(lot("l2", 9),), unsettled=(("l1", 10),))
    settled = settlement(Mutation(account, new_lots=(lot("l1", 3),)))
    assert settled.remade == frozenset({"l1"}) and settled.unsettled == ()


def test_reading_takes_the_unsettled_credits_off_and_drops_a_lot_left_with_none() -> None:
    read = as_read((lot("l1", 10), lot("l2", 10)), (("l1", 10), ("l2", 3)))
    assert read == (replace(lot("l2", 10), remaining=7),)


def test_draws_fit_what_each_lot_holds_summed_and_only_before_it_expires() -> None:
    account = Account("a", lots=(lot("l1", 10, NOW + 5),))
    assert draws_fit(Mutation(account, draws=(Draw("l1", 10),)), NOW)
    assert not draws_fit(Mutation(account, draws=(Draw("l1", 6), Draw("l1", 5))), NOW)
    assert not draws_fit(Mutation(account, draws=(Draw("l1", 1),)), NOW + 5)
    assert not draws_fit(Mutation(account, draws=(Draw("ghost", 1),)), NOW)


def test_the_deployed_setting_sets_the_limit_for_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # UNSETTLED_LOTS=0 while a running version ignores unsettled credits (docs/operations.md)
    monkeypatch.setenv("TABLE_NAME", "ledger")
    monkeypatch.setenv("UNSETTLED_LOTS", "0")
    monkeypatch.setattr(unsettled, "LIMIT", unsettled.LIMIT)  # put back afterwards
    bootstrap.reset()
    try:
        bootstrap.get_service()
    finally:
        bootstrap.reset()
    assert unsettled.LIMIT == 0
    account = Account("a", lots=(lot("l1", 5),), unsettled=(("gone", 4),))
    settled = settlement(Mutation(account, draws=(Draw("l1", 2),)))
    assert settled.unsettled == () and len(settled.writes) == 2
