"""How a batch of usage records becomes one mutation per account: each record's charge,
the lots it drew, what the lots could not pay (arrears), and one idempotency record per
event_id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from tollbooth.domain import clock
from tollbooth.domain.allocation import draw_records, draw_what_lots_can, with_draws
from tollbooth.domain.events import overdrawn_event
from tollbooth.domain.ledger import RESERVED_KEY_PREFIX, Account, Draw, IdempotencyRecord, Mutation, Use, next_entry
from tollbooth.domain.money import format_credits
from tollbooth.domain.pricing import Charge

REUSED = "event_id already charged with a different record"


# How far ahead of our clock a worker's occurred_at may be (its clock may run fast).
MAX_CLOCK_SKEW_MS = 5 * 60_000


@dataclass(frozen=True)
class UsageOutcome:
    event_id: str
    status: Literal["charged", "duplicate", "rejected"]
    reason: str | None = None
    charged: int = 0  # millicredits


class UsageRecord(Protocol):
    """What charging needs of a usage record (the wire contract's record has all of it)."""

    @property
    def event_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def worker_id(self) -> str: ...
    def fingerprint(self) -> str: ...
    def metrics(self) -> dict[str, Any]: ...


Record = TypeVar("Record", bound=UsageRecord)


def usage_key(event_id: str) -> str:
    return f"{RESERVED_KEY_PREFIX}usage:{event_id}"


def usage_line(record: UsageRecord, charge: Charge, drew: list[list[int]], unpaid: int) -> dict[str, Any]:
    """How the usage entry lists one record: its charge, what it drew of each lot (``drew``:
    [index into the entry's draws, credits], what a reversal of the record gives back to),
    what it left unpaid, what priced it."""
    return {
        "event_id": record.event_id,
        "feature": charge.feature,
        "quantity": charge.quantity,
        "dimensions": charge.dimensions,
        "charged": charge.amount,
        "drew": drew,
        "unpaid": unpaid,
        "catalog_version": charge.catalog_version,
        "occurred_at": clock.to_iso(clock.from_datetime(record.occurred_at)),
        "worker_id": record.worker_id,
        "resources": record.metrics(),
    }


def usage_mutation(
    account: Account, pending: list[tuple[int, Record, Charge]], now: int, max_items: int
) -> tuple[Mutation, list[tuple[int, Record, Charge]]]:
    """One transaction charging as many of ``pending`` as fit in ``max_items``, in order:
    the mutation, and which records it includes.

    The records share one ``usage`` ledger entry that lists each of them (its charge, what
    it took, the catalog version that priced it); each record's idempotency record points
    at that entry. Items: the account, the entry, one idempotency record per record, and
    each lot drawn. Unpaid usage becomes arrears; the first time the account goes into
    arrears, an ``account.overdrawn`` event goes into its outbox."""
    working = account
    lines: list[dict[str, Any]] = []
    drawn: dict[str, int] = {}
    included: list[tuple[int, Record, Charge]] = []
    unpaid_total = 0
    for item in pending:
        _, record, charge = item
        draws, unpaid = draw_what_lots_can(working, charge.amount, now, Use(charge.feature, charge.licence))
        lots_after = set(drawn) | {draw.lot_id for draw in draws}
        if included and 2 + len(included) + 1 + len(lots_after) > max_items:
            break
        working = with_draws(working, draws)
        for draw in draws:
            drawn[draw.lot_id] = drawn.get(draw.lot_id, 0) + draw.amount
        unpaid_total += unpaid
        order = list(drawn)  # a record's draws point into the entry's, to keep the entry small
        lines.append(usage_line(record, charge, [[order.index(d.lot_id), d.amount] for d in draws], unpaid))
        included.append(item)
    total = sum(line["charged"] for line in lines)
    details = {
        "records": lines,
        "draws": draw_records(tuple(Draw(lot_id, amount) for lot_id, amount in drawn.items()), account.lots),
        "unpaid": unpaid_total,
    }
    entry = next_entry(account, "usage", -total, now, None, details)
    records = tuple(
        IdempotencyRecord(
            usage_key(record.event_id),
            record.fingerprint(),
            200,
            {"event_id": record.event_id, "entry_id": entry.entry_id, "charged": format_credits(charge.amount)},
            entry.seq,
        )
        for _, record, charge in included
    )
    events = account.pending_events
    if account.arrears == 0 and unpaid_total > 0:
        events = (*events, overdrawn_event(account.account_id, entry, unpaid_total, now))
    mutation = Mutation(
        account,
        (entry,),
        records,
        draws=tuple(Draw(lot_id, amount) for lot_id, amount in drawn.items()),
        arrears_change=unpaid_total,
        pending_events=events,
    )
    return mutation, included
