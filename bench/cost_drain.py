"""The cost model's drain: consumes through many small lots, with the draws kept on the
account item (``domain.unsettled``) and with every draw written on its lot, side by side."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import MAX_GRANT
from bench.cost import _id, _Rig

DRAIN_LOTS = 40  # small lots a drain of consumes runs through


@contextmanager
def unsettled_limit(limit: int) -> Iterator[None]:
    """Run with at most ``limit`` lots' unsettled credits on the account item (0: every draw
    written on its lot, as before ``domain.unsettled``)."""
    from tollbooth.domain import unsettled

    kept = unsettled.LIMIT
    unsettled.LIMIT = limit
    try:
        yield
    finally:
        unsettled.LIMIT = kept


def kept_limit() -> int:
    from tollbooth.domain.unsettled import LIMIT

    return LIMIT


def drain_costs(limit: int) -> dict[str, Any]:
    """Consumes of 2 credits through ``DRAIN_LOTS`` lots of 5, due one after another before 64
    larger ones: every lot drawn leaves unsettled credits on the account item, and once more
    than ``limit`` lots have some, the consume that adds one settles the oldest (the worst
    case for settling: a new lot every 2.5 consumes)."""
    with unsettled_limit(limit):
        rig = _Rig()
        account = _id("acct")
        rig.grant(account, MAX_GRANT)
        for n in range(64):
            rig.grant(account, 1_000_000, 60 + n)
        for n in range(DRAIN_LOTS):
            rig.grant(account, 5_000, 10 + n)
        rig.consume(account, 1)  # warm: the container wrote the account last
        runs = [rig.measure(lambda: rig.consume(account, 2))[0] for _ in range(DRAIN_LOTS * 5 // 2 - 1)]
    units = [metered.write_units for metered in runs]
    worst = max(runs, key=lambda metered: metered.write_units)
    return {"limit": limit, "units": units, "worst": worst, "bytes": rig.account_bytes(account)}
