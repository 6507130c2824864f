"""Finding what a reversal needs: the charge, by its entry's id (which says where the entry
lives: one read, never a scan of the history), and the terms of the lots it drew that
have since left the store (as the entries that granted them recorded them)."""

from __future__ import annotations

from dataclasses import replace

from tollbooth.app.ports import LedgerStore
from tollbooth.domain import ids
from tollbooth.domain.errors import EntryNotFound
from tollbooth.domain.grants import lot_from_terms
from tollbooth.domain.ledger import Account, Lot
from tollbooth.domain.reversals import Charged, charged_by


def find_charge(store: LedgerStore, account_id: str, entry_id: str, event_id: str | None) -> Charged:
    """The charge entry ``entry_id`` made on ``account_id`` (of usage record ``event_id``)."""
    position = ids.entry_position(entry_id)
    entry = None if position is None else store.find_entry(account_id, *position)
    if entry is None or entry.entry_id != entry_id:
        raise EntryNotFound(f"the account has no ledger entry {entry_id!r}")
    return charged_by(entry, event_id)


def departed_lots(store: LedgerStore, account: Account, charged: Charged) -> dict[str, Lot]:
    """The lots ``charged`` drew that the account no longer holds, as they were granted."""
    held = {lot.lot_id for lot in account.lots}
    gone = {draw.lot_id: draw.grant_seq for draw in charged.draws if draw.lot_id not in held}
    terms: dict[str, Lot] = {}
    for seq in sorted({seq for seq in gone.values() if seq is not None}):
        entry = store.find_entry(account.account_id, seq)
        for stored in [] if entry is None else entry.details.get("lots", []):
            lot = lot_from_terms(stored)
            if gone.get(lot.lot_id) == seq:
                terms[lot.lot_id] = replace(lot, grant_seq=seq)
    return terms
