"""The in-memory twin's items: keyed and encoded as the DynamoDB Repository stores them
(``adapters.keys`` and ``adapters.lot_attributes``), and sized as DynamoDB sizes them."""

from __future__ import annotations

import json
from typing import Any

from tollbooth.adapters.entry_details import compressed, expanded
from tollbooth.adapters.keys import Keys
from tollbooth.adapters.lot_attributes import (
    claims_from_stored,
    claims_stored,
    escrow_from_stored,
    escrow_stored,
    hold_from_stored,
    hold_refs_from_stored,
    hold_refs_stored,
    hold_stored,
    intent_from_stored,
    intent_stored,
    lot_attributes,
    lot_from_summary,
    lots_summarised,
    periods_from_stored,
    periods_stored,
    slice_from_stored,
    slice_stored,
    spills_from_stored,
    spills_stored,
    summaries_json,
    unsettled_from_stored,
    unsettled_stored,
)
from tollbooth.domain import ids
from tollbooth.domain.expiry import ExpiryIndexing, expiry_summary
from tollbooth.domain.hold_state import Hold, hold_due_at
from tollbooth.domain.ledger import Account, IdempotencyRecord, Intent, LedgerEntry, Lot, Slice
from tollbooth.domain.unsettled import as_read

Item = dict[str, Any]


def stored_item(pk: str, sk: str, kind: str, /, **attributes: Any) -> Item:
    """An item as DynamoDB keeps it: a null attribute is no attribute."""
    return {"pk": pk, "sk": sk, "type": kind, **{name: v for name, v in attributes.items() if v is not None}}


def lot_item(pk: str, lot: Lot) -> Item:
    stored = {name: frozenset(v) if isinstance(v, set) else v for name, v in lot_attributes(lot).items()}
    return stored_item(pk, Keys.lot(lot.lot_id), "lot", **stored)


ACCOUNT_PLAIN = ("account_id", "version", "balance", "granted", "consumed", "expired")
ACCOUNT_COUNTERS = ("arrears", "clawed_back", "adjusted", "voided", "reversed")  # absent while 0


def account_from_item(
    item: Item, lots: tuple[Lot, ...] | None = None, intent: Item | None = None, slices: tuple[Slice, ...] = ()
) -> Account:
    """The account as its item holds it; without ``lots``, its lots are the expiring summary
    (the sweep's view, which also says when the lots beyond the summary are due)."""
    view = lots is None
    unsettled = unsettled_from_stored(json.loads(item.get("unsettled", "null")))
    if lots is None:
        summaries = json.loads(item.get("expiring_lots", "[]"))
        lots = tuple(lot_from_summary(summary) for summary in summaries)
    else:
        lots = as_read(lots, unsettled)
    counts: dict[str, Any] = {name: item[name] for name in ACCOUNT_PLAIN}
    return Account(
        **counts,
        seq=item["seq"],
        **{name: item.get(name, 0) for name in ACCOUNT_COUNTERS},
        lots=lots,
        pending_events=tuple(json.loads(item.get("pending_events", "[]"))),
        spilled=spills_from_stored(json.loads(item.get("spilled", "null"))),
        periods=periods_from_stored(json.loads(item.get("periods", "null"))),
        intent=None if intent is None else intent_from_stored({**intent, **_decoded(intent, INTENT_JSON)}),
        unsummarized=item.get("unsummarized") if view else None,
        escrow=escrow_from_stored(json.loads(item.get("escrow", "null"))),
        streams=tuple(json.loads(item.get("streams", "[]"))),
        slices=slices,
        holds=hold_refs_from_stored(json.loads(item.get("holds", "null"))),
        disputed=tuple(json.loads(item.get("disputed", "[]"))),
        clawing=claims_from_stored(json.loads(item.get("clawing", "null"))),
        unsettled=unsettled,
    )


def account_item(account: Account, now: int, expiry: ExpiryIndexing) -> Item:
    """The account item for a state, with the sweep's summary and index keys."""
    summary = expiry_summary(account, expiry)
    due = summary.next_due_at
    fields = {name: getattr(account, name) for name in (*ACCOUNT_PLAIN, "seq")}
    fields |= {name: getattr(account, name) or None for name in ACCOUNT_COUNTERS} | {"updated_at": now}
    fields["expiring_lots"] = lots_summarised(summary.lots)
    fields["unsummarized"] = summary.unsummarized
    fields["pending_events"] = json.dumps(list(account.pending_events)) if account.pending_events else None
    spilled = spills_stored(account.spilled)
    fields["spilled"] = None if spilled is None else json.dumps(spilled)
    fields |= account_escrow(account)
    periods = periods_stored(account.periods)
    fields["periods"] = None if periods is None else json.dumps(periods)
    fields["intent_id"] = None if account.intent is None else account.intent.entry_id
    fields["expiry_shard"] = None if due is None else Keys.expiry_shard(account.account_id, expiry.shards)
    return stored_item(Keys.account(account.account_id), Keys.ACCOUNT_SK, "account", **fields, next_due_at=due)


def account_escrow(account: Account) -> dict[str, Any]:
    """What the account item records of its slices (JSON attributes: strings)."""
    escrow = escrow_stored(account.escrow)
    return {
        "escrow": None if escrow is None else json.dumps(escrow),
        "streams": json.dumps(list(account.streams)) if account.streams else None,
        "holds": None if not account.holds else json.dumps(hold_refs_stored(account.holds)),
        "disputed": json.dumps(list(account.disputed)) if account.disputed else None,
        "clawing": None if (claims := claims_stored(account.clawing)) is None else json.dumps(claims),
        "unsettled": None if (owed := unsettled_stored(account.unsettled)) is None else summaries_json(owed),
    }


SLICE_JSON = ("portions", "holds", "through_account")  # a slice's JSON attributes


def slice_item(account_id: str, held: Slice) -> Item:
    stored = slice_stored(held)
    encoded = {name: json.dumps(value) if (value := stored.pop(name)) else None for name in SLICE_JSON}
    return stored_item(
        Keys.slice(account_id, held.index), Keys.SLICE_SK, "slice", account_id=account_id, **stored, **encoded
    )


def hold_item(account_id: str, hold: Hold, shards: int) -> Item:
    """A hold's item, its JSON attributes as strings (as PynamoDB stores them); one placed
    on a slice carries the expiry index's keys while the sweep has work on it."""
    stored = hold_stored(hold)
    json_fields: dict[str, str | None] = {name: json.dumps(stored.pop(name)) for name in ("portions", "dimensions")}
    events = stored.pop("pending_events")
    json_fields["pending_events"] = None if events is None else json.dumps(events)
    pk, sk = Keys.hold(account_id, hold.hold_id)
    due = hold_due_at(hold) if ids.hold_slice(hold.hold_id) is not None else None
    index = {"expiry_shard": None if due is None else Keys.expiry_shard(account_id, shards), "next_due_at": due}
    return stored_item(pk, sk, "hold", account_id=account_id, **stored, **json_fields, **index)


def hold_from_item(item: Item) -> Hold:
    decoded = {name: json.loads(item.get(name) or "null") for name in ("portions", "dimensions", "pending_events")}
    return hold_from_stored({**item, **decoded})


def slice_from_item(item: Item) -> Slice:
    decoded = {name: json.loads(item.get(name) or "null") for name in SLICE_JSON}
    return slice_from_stored({**item, **decoded})


def entry_item(account_id: str, entry: LedgerEntry) -> Item:
    names = ("entry_id", "seq", "slice", "kind", "amount", "balance_after", "created_at", "idempotency_key")
    packed = compressed(entry.details)
    details = None if packed else json.dumps(entry.details)  # PynamoDB's JSONAttribute: a string, even for {}
    pk = Keys.stream(account_id, entry.slice)
    fields = {n: getattr(entry, n) for n in names}
    return stored_item(pk, Keys.entry(entry.seq), "entry", **fields, details=details, details_z=packed)


def entry_from_item(item: Item) -> LedgerEntry:
    fields = {n: item[n] for n in ("entry_id", "seq", "kind", "amount", "created_at")}
    details = expanded(item["details_z"]) if "details_z" in item else json.loads(item.get("details") or "null")
    return LedgerEntry(
        **fields,
        balance_after=item.get("balance_after"),
        idempotency_key=item.get("idempotency_key"),
        details=details or {},
        slice=item.get("slice"),
    )


def record_item(account_id: str, record: IdempotencyRecord, now: int) -> Item:
    body = json.dumps(record.body, separators=(",", ":"))
    fields = {"key": record.key, "fingerprint": record.fingerprint, "status_code": record.status_code}
    pk, sk = Keys.idempotency(account_id, record.key)
    return stored_item(pk, sk, "idempotency", **fields, body=body, seq=record.seq, created_at=now)


def item_size(item: Item) -> int:
    """An item's size roughly as DynamoDB counts it: UTF-8 names and values, a number one
    byte per two digits plus one, a boolean or null one byte, a set its members."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return (len(str(abs(value)).replace(".", "").strip("0") or "0") + 1) // 2 + 1
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, frozenset | set | list | tuple):
        return sum(_value_size(member) for member in value)
    return len(json.dumps(value).encode())


INTENT_JSON = ("draws", "returns", "remade")


def intent_item(pk: str, intent: Intent) -> Item:
    stored = intent_stored(intent)
    encoded = {name: None if stored[name] is None else json.dumps(stored[name]) for name in INTENT_JSON}
    return stored_item(pk, Keys.INTENT_SK, "intent", **{**stored, **encoded})  # JSON: a string


def _decoded(item: Item, names: tuple[str, ...]) -> dict[str, Any]:
    """The JSON attributes ``names`` of ``item``, decoded (an absent one: None)."""
    return {name: json.loads(item[name]) if name in item else None for name in names}
