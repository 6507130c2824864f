"""The escrow rules, pure (``domain.slices``): what a refill moves, within one transaction."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tollbooth.domain.errors import InsufficientCredits
from tollbooth.domain.ledger import Account, Escrow, Lot, Slice, Use
from tollbooth.domain.slices import Elsewhere, NeedWhole, PoolNeeded, Scarce, SliceTooNarrow, pooled, recall, refill

NOW = 1_800_000_000_000
USE = Use("text_generation", "personal")


def lot(lot_id: str, credits: int, expires_in: int | None = None) -> Lot:
    expires = None if expires_in is None else NOW + expires_in
    return Lot(lot_id, "promotional", credits, credits, NOW - 1, expires_at=expires)


def account(*lots: Lot, **fields: object) -> Account:
    return Account(
        "a",
        version=3,
        balance=sum(x.remaining for x in lots),
        granted=sum(x.granted for x in lots),
        lots=lots,
        **fields,
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("max_items", [10, 100])
def test_a_refill_fills_siblings_only_as_far_as_one_transaction_holds(max_items: int) -> None:
    mutation = refill(account(lot("l1", 1_000_000)), 5, 1000, USE, NOW, share=32, max_items=max_items, window=0)
    assert mutation is not None and mutation.transaction_items <= max_items
    moves = {m.after.index: m for m in mutation.slice_moves}
    assert moves[5].escrow is not None and moves[5].escrow.received == 1_000_000 // 64
    assert len(moves) == min(32, max_items - 2)  # the account, the lot, and the slices
    after = mutation.account_after
    assert after.balance == 1_000_000 - after.escrowed and after.balance == after.lots[0].remaining


def test_a_refill_takes_lots_in_burn_down_order_and_no_more_than_a_recall_can_return() -> None:
    lots = [lot(f"l{i}", 1000, expires_in=i + 1) for i in range(20)]
    mutation = refill(account(*lots), 0, 5000, USE, NOW, share=1, max_items=10, window=0)
    assert mutation is not None
    (move,) = mutation.slice_moves
    # Its share is 10 lots' worth; it takes the first 8 (10 items, less the account and the slice)
    assert [p.lot_id for p in move.after.portions] == [f"l{i}" for i in range(8)]
    with pytest.raises(SliceTooNarrow):
        refill(account(*lots), 0, 9000, USE, NOW, share=1, max_items=10, window=0)


def test_lots_too_few_to_share_are_spent_on_the_account_itself() -> None:
    # A share (half the lots over 4 slices) of 1,000 credits is 125: a request of 200 goes on the account
    with pytest.raises(Scarce):
        refill(account(lot("l1", 1000)), 0, 200, USE, NOW, share=4, max_items=10, window=0)


def test_a_slice_that_can_pay_is_left_alone_and_a_short_account_pools_first() -> None:
    filled = Slice(2, version=1, portions=(lot("l1", 500),))
    assert (
        refill(
            account(lot("l1", 10), slices=(filled,), escrow=(Escrow(2, 500),)),
            2,
            400,
            USE,
            NOW,
            share=4,
            max_items=10,
            window=0,
        )
        is None
    )
    # Slice 5 needs 400: the lots hold 10, slice 2 holds 500, so slice 5's container spends
    # on slice 2 (nothing is moved); the lots read alone (not whole) must be read whole
    short = account(lot("l1", 10), slices=(filled,), escrow=(Escrow(2, 500),))
    with pytest.raises(Elsewhere) as elsewhere:
        refill(short, 5, 400, USE, NOW, share=4, max_items=10, window=0)
    assert elsewhere.value.index == 2
    with pytest.raises(NeedWhole):
        refill(replace(short, slices=()), 5, 400, USE, NOW, share=4, max_items=10, window=0, whole=False)
    # 400 again, with 300 in each of slices 2 and 3: no slice pays alone, so both are recalled
    halves = (Slice(2, version=1, portions=(lot("l1", 300),)), Slice(3, version=1, portions=(lot("l1", 300),)))
    split = account(lot("l1", 10), slices=halves, escrow=(Escrow(2, 300), Escrow(3, 300)))
    with pytest.raises(PoolNeeded) as needed:
        refill(split, 5, 400, USE, NOW, share=4, max_items=10, window=0)
    assert needed.value.indexes == (2, 3)
    # 600 is more than the whole account holds, which refuses without recalling anything
    with pytest.raises(InsufficientCredits):
        refill(short, 5, 600, USE, NOW, share=4, max_items=10, window=0)
    # Read while writers kept moving credits: no refusal rests on it; every slice is recalled
    with pytest.raises(PoolNeeded) as unsure:
        refill(replace(short, consistent=False), 5, 600, USE, NOW, share=4, max_items=10, window=0)
    assert unsure.value.indexes is None


def test_a_recall_folds_what_the_slice_spent_and_the_pooled_view_matches_it() -> None:
    held = Slice(1, version=4, portions=(lot("gone", 300),), consumed=200, seq=2)
    state = Account(
        "a",
        version=9,
        balance=1000 - 500,
        granted=1000,
        lots=(lot("l1", 500),),
        escrow=(Escrow(1, 500),),
        slices=(held,),
    )
    after = recall(state, 1, 0).account_after
    assert {x.lot_id: x.remaining for x in after.lots} == {"l1": 500, "gone": 300}
    assert (after.balance, after.consumed, after.escrow) == (800, 200, ())
    view = pooled(state)
    assert (view.balance, view.consumed, sorted(x.remaining for x in view.lots)) == (800, 200, [300, 500])
