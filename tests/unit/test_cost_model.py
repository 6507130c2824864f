"""The cost model's billing arithmetic (bench.billing): DynamoDB's on-demand rules as the
bench applies them, and a bill that adds up to its parts."""

from __future__ import annotations

from bench.billing import (
    INDEX,
    ItemWrite,
    Metered,
    Read,
    Transaction,
    index_write_units,
    read_units,
    transactional_write_units,
)
from bench.cost import Operation, consume_costs, dollars

KB = 1024


def account_item(**attributes: object) -> dict[str, object]:
    return {"pk": "ACCOUNT#a", "sk": "ACCOUNT", "type": "account", "version": 1, **attributes}


def test_a_transactional_write_costs_two_units_per_started_kilobyte_of_each_item() -> None:
    assert transactional_write_units(None, 100) == 2
    assert transactional_write_units(None, KB) == 2
    assert transactional_write_units(None, int(1.2 * KB)) == 4
    assert transactional_write_units(None, 5 * KB + 1) == 12


def test_an_update_or_delete_costs_the_larger_of_the_item_before_and_after() -> None:
    assert transactional_write_units(900, int(1.2 * KB)) == 4  # grows past 1 KB
    assert transactional_write_units(int(1.2 * KB), 900) == 4  # shrinks below it
    assert transactional_write_units(3 * KB, None) == 6  # a delete costs the item it removes


def test_an_index_entry_costs_one_unit_per_kilobyte_and_a_key_change_is_a_delete_and_a_put() -> None:
    assert index_write_units(None, None, key_changed=False) == 0  # never in the sparse index
    assert index_write_units(None, int(1.5 * KB), key_changed=False) == 2  # put
    assert index_write_units(900, 950, key_changed=False) == 1  # projected attributes change
    assert index_write_units(900, 900, key_changed=False, changed=False) == 0  # nothing changed
    assert index_write_units(900, int(1.5 * KB), key_changed=True) == 1 + 2  # delete the old, put the new
    assert index_write_units(int(2.5 * KB), None, key_changed=False) == 3  # removal


def test_a_strongly_consistent_query_costs_one_unit_per_started_4_kb_of_everything_it_returns() -> None:
    assert read_units([2 * KB, 3 * KB]) == 2  # 5 KB
    assert read_units([100] * 40) == 1  # 4,000 bytes
    assert read_units([]) == 1  # a Query that finds nothing still costs a unit
    assert Read("GetItem", (5 * KB,)).read_units == 2


def test_an_item_write_sees_the_account_enter_the_index_and_its_key_move() -> None:
    outside = account_item()
    indexed = account_item(expiry_shard="EXPIRY#001", next_due_at=1000)
    moved = account_item(expiry_shard="EXPIRY#001", next_due_at=2000)
    entered = ItemWrite.of(outside, indexed)
    assert (entered.index_before, entered.index_key_changed, entered.index_units) == (None, False, 1)
    assert ItemWrite.of(indexed, moved).index_units == 2
    assert ItemWrite.of(indexed, outside).index_units == 1
    assert ItemWrite.of(None, outside).index_units == 0
    assert ItemWrite.of(outside, None).kind == "account item"


def test_the_breakdown_by_item_sums_to_the_bill_and_prices_it() -> None:
    lot = {"pk": "ACCOUNT#a", "sk": "ACCOUNT#LOT#l", "type": "lot", "remaining": 5, "blob": "x" * 1500}
    record = {"pk": "IDEMPOTENCY#a#k", "sk": "IDEMPOTENCY", "type": "idempotency"}
    writes = [
        ItemWrite.of(account_item(), account_item(expiry_shard="EXPIRY#001", next_due_at=1)),
        ItemWrite.of(lot, {**lot, "remaining": 4}),
        ItemWrite.of(None, record),
    ]
    transaction = Transaction(writes)
    assert transaction.breakdown() == {"account item": 2, INDEX: 1, "lot": 4, "idempotency record": 2}
    assert transaction.write_units == 9
    assert transaction.partition_units("ACCOUNT#a") == 6  # the record has a partition of its own
    operation = Operation("a write", Metered([transaction], [Read("Query", (5 * KB,))]), api=True)
    cost = dollars(operation, memory_mb=512)
    assert round(cost["DynamoDB"], 6) == round(9 * 0.625 + 2 * 0.125, 6)
    assert cost["API"] == 1.0


def test_a_measured_consume_bills_each_item_it_writes_and_nothing_else() -> None:
    # Given an account holding one lot with no expiry and 4 live expiring lots
    result = consume_costs(4)
    # Then a warm consume is one transaction: the account item (with its index entry, and
    # the draw kept on it), the entry and the idempotency record; the lot's item is not written
    one: Metered = result["one"]
    assert one.requests() == {"TransactWriteItems": 1}
    kinds = sorted(write.kind for write in one.transactions[0].writes)
    assert kinds == ["account item", "idempotency record", "ledger entry"]
    assert one.breakdown()[INDEX] > 0
    for metered in (one, result["two"], result["replay"]):
        assert sum(metered.breakdown().values()) == metered.write_units
    # And a replay is answered from the idempotency record, read once
    assert result["replay"].requests()["GetItem"] == 1


def test_a_usage_record_on_a_hot_account_and_a_consume_on_a_slice_are_billed_as_measured() -> None:
    from bench.cost import slice_consume_cost, usage_cost

    # A batch of 10 records of one account: each its idempotency record, and a tenth of the
    # rest: the account item with 4 lots summarised (under 1 KB: 2 WRU, and 1 for its index
    # entry) and the entry listing the 10 (compressed below 1 KB: 2); the lot drawn is kept
    # on the account item
    assert usage_cost(10, spread=False).wru == 2.5
    # 95, the most one transaction takes: the idempotency record and a little more
    largest = usage_cost(95, spread=False)
    assert largest.metered.requests() == {"TransactWriteItems": 1}
    assert 2 < largest.wru <= 2.2
    # A consume on a hot account's slice: the slice, the entry and the key, one request
    slice_consume = slice_consume_cost(20.0)
    assert slice_consume.wru == 6 and slice_consume.metered.requests() == {"TransactWriteItems": 1}


def test_a_consumes_bill_stops_growing_with_the_live_expiring_lots_past_the_summary() -> None:
    # Given accounts holding 6 live expiring lots (the summary's size) and 64
    summarised, many = consume_costs(6), consume_costs(64)
    # Then the account item stays under 1 KB, so a consume drawing one lot costs its three
    # items at 2 WRU each and 1 for the account's index entry, and one drawing two lots, the
    # first of which runs out (the index key moves), 1 more
    for result in (summarised, many):
        assert result["account_bytes"] < 1024
        assert result["one"].write_units == 7
        assert result["two"].write_units == 8


def test_a_drain_through_small_lots_settles_the_oldest_and_costs_less_than_writing_every_draw() -> None:
    from bench.cost_drain import drain_costs

    # Consumes of 2 credits through lots of 5: a new lot every 2.5 consumes
    kept, written = drain_costs(2), drain_costs(0)
    # Then a consume that settles an older lot's credits pays that lot's item (2 WRU) on top
    # of its own 8; writing every draw on its lot costs up to 12
    assert max(kept["units"]) == 10 and max(written["units"]) == 12
    assert sum(kept["units"]) < sum(written["units"])
    assert kept["bytes"] < 1024
