"""What a store holds of an account's lots, item by item, beneath what it reads back: each
lot item's credits and the account item's unsettled ones (``domain.unsettled``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tollbooth.adapters.dynamodb import Repository
from tollbooth.adapters.dynamodb.items import AccountItem, LotItem, TableItem
from tollbooth.adapters.keys import Keys
from tollbooth.adapters.memory import MemoryStore


@dataclass(frozen=True)
class Stored:
    lots: dict[str, int]  # each lot item's ``remaining``, as written
    unsettled: dict[str, int]  # the account item's, oldest first


def stored(store: MemoryStore | Repository, account_id: str) -> Stored:
    pk = Keys.account(account_id)
    if isinstance(store, MemoryStore):
        items = store.raw_items(pk)
        lots = {i["lot_id"]: i["remaining"] for i in items if i["type"] == "lot"}
        account = [json.loads(i.get("unsettled", "[]")) for i in items if i["type"] == "account"]
        return Stored(lots, dict(account[0] if account else []))
    found = list(TableItem.query(pk, consistent_read=True))
    lots = {i.lot_id: int(i.remaining) for i in found if isinstance(i, LotItem)}
    owed = [i.unsettled or [] for i in found if isinstance(i, AccountItem)]
    return Stored(lots, {lot_id: int(credits) for lot_id, credits in (owed[0] if owed else [])})
