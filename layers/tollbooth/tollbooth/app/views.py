"""Domain state as the API contract shows it: lots, ledger entries and page cursors."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from tollbooth.app.context import shown
from tollbooth.contracts.history import LedgerEntryView
from tollbooth.contracts.http import DrawView, LotView
from tollbooth.domain import clock
from tollbooth.domain.errors import (
    InvalidCursor,
)
from tollbooth.domain.ledger import (
    LedgerEntry,
    Lot,
)
from tollbooth.domain.money import format_credits

LEDGER_PAGE_MAX = 100


def lot_view(lot: Lot) -> LotView:
    return LotView(
        lot_id=lot.lot_id,
        source=lot.source,
        granted=format_credits(lot.granted),
        remaining=format_credits(lot.remaining),
        expires_at=None if lot.expires_at is None else clock.to_iso(lot.expires_at),
        priority=lot.priority,
        created_at=clock.to_iso(lot.created_at),
        package_id=lot.package_id,
        price_minor=lot.price_minor,
        currency=lot.currency,
        reason=lot.reason,
        licences=None if lot.licences is None else list(lot.licences),
        features=None if lot.features is None else list(lot.features),
        priority_processing=lot.priority_processing,
        unlocks=list(lot.unlocks),
        campaign_id=lot.campaign_id,
        plan_id=lot.plan_id,
    )


def _draw_views(stored: list[dict[str, Any]] | None) -> list[DrawView] | None:
    if stored is None:
        return None
    return [DrawView(lot_id=draw["lot_id"], amount=format_credits(draw["amount"])) for draw in stored]


# Credits an entry's details hold (millicredits stored, decimal strings shown); a hold's
# entries' ``credits`` is what it reserved, a reversal's ``charged`` what its charge took.
CREDIT_FIELDS = (
    "lot_granted",
    "unpaid",
    "arrears_paid",
    "clawed_back",
    "unrecovered",
    "charged",
    "reversed_total",
    "arrears_reduced",
    "written_off",
    "credits",
    "captured",
    "from_hold",
    "released",
)


def _record_view(line: dict[str, Any], drawn: list[dict[str, Any]]) -> dict[str, Any]:
    """A usage record as the history shows it: its credits, and the lots it drew."""
    shown = {key: value for key, value in line.items() if key != "drew"}
    shown |= {"charged": format_credits(line["charged"]), "unpaid": format_credits(line["unpaid"])}
    if "drew" in line:
        shown["draws"] = [{"lot_id": drawn[i]["lot_id"], "amount": format_credits(n)} for i, n in line["drew"]]
    return shown


def entry_view(entry: LedgerEntry) -> LedgerEntryView:
    details = dict(entry.details)
    for amount_field in CREDIT_FIELDS:
        if isinstance(details.get(amount_field), int):
            details[amount_field] = format_credits(details[amount_field])
    if "records" in details:
        details["records"] = [_record_view(line, entry.details.get("draws", [])) for line in details["records"]]
    if "caller" in details:
        details["caller"] = shown(details["caller"])
    claws = details.pop("claws", None)  # a refund's, per lot: shown as its draws
    draws = details.pop("draws", None) or details.pop("claimed", None)  # a claim's: the lots it took from
    if claws is not None:
        draws = [{"lot_id": claw["lot_id"], "amount": claw["taken"]} for claw in claws if claw["taken"]]
    rolled = details.pop("rolled_over", None)
    details.pop("lots", None)  # the granted lots' terms: kept for refunds and reversals, shown as lot_ids
    return LedgerEntryView(
        entry_id=entry.entry_id,
        seq=entry.seq,
        slice=entry.slice,
        kind=entry.kind,
        amount=format_credits(entry.amount),
        balance_after=None if entry.balance_after is None else format_credits(entry.balance_after),
        created_at=clock.to_iso(entry.created_at),
        idempotency_key=entry.idempotency_key,
        draws=_draw_views(draws),
        rolled_over=_draw_views(rolled),
        **details,
    )


# A page cursor holds, for each stream of entries still to read (the account's own, "a",
# or a slice's, by number), the seq to continue below. Version 1 held the account's only.
ACCOUNT_STREAM = "a"


def encode_cursor(bounds: dict[int | None, int]) -> str:
    stored = {ACCOUNT_STREAM if stream is None else str(stream): seq for stream, seq in bounds.items()}
    return base64.urlsafe_b64encode(json.dumps({"v": 2, "before": stored}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[int | None, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        before = data["before"]
        if data.get("v") == 1:
            before = {ACCOUNT_STREAM: before}
        elif data.get("v") != 2 or not isinstance(before, dict):
            raise ValueError
        bounds = {None if name == ACCOUNT_STREAM else int(name): seq for name, seq in before.items()}
        if any(not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 for seq in bounds.values()):
            raise ValueError
        return bounds
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error) as error:
        raise InvalidCursor("the cursor is not one this API returned") from error
