"""Reads: an account's balance as the API shows it, and its ledger a page at a time."""

from __future__ import annotations

from tollbooth.app.ports import LedgerStore
from tollbooth.app.views import decode_cursor, encode_cursor, entry_view, lot_view
from tollbooth.contracts.history import LedgerPageResponse
from tollbooth.contracts.http import BalanceResponse, NextExpiry, PerksView, Totals
from tollbooth.domain import clock
from tollbooth.domain.allocation import burn_down_order, next_expiry, perks_at
from tollbooth.domain.errors import InvalidRequest, StoreBusy
from tollbooth.domain.expiry import expiring_within
from tollbooth.domain.ledger import Expiry, LedgerEntry
from tollbooth.domain.money import format_credits
from tollbooth.domain.slices import pooled


def _expiry(moment: Expiry) -> NextExpiry:
    return NextExpiry(expires_at=clock.to_iso(moment.expires_at), amount=format_credits(moment.amount))


def balance(store: LedgerStore, account_id: str, now: int) -> BalanceResponse:
    """Always a fresh read: a balance never comes from a remembered state."""
    read = store.load_account(account_id)
    if not read.consistent:  # writers kept moving credits between the account and its slices
        raise StoreBusy("the account kept changing while it was read; retry the request")
    account = pooled(read)  # its slices' credits with its own
    upcoming = next_expiry(account, now)
    perks = perks_at(account, now)
    window = store.expiry.warning_window
    return BalanceResponse(
        account_id=account_id,
        available=format_credits(max(0, account.available_at(now) - account.arrears)),
        arrears=format_credits(account.arrears),
        frozen=format_credits(sum(lot.remaining for lot in account.lots if lot.frozen)),
        held=format_credits(account.held),
        balance=format_credits(account.balance),
        totals=Totals(
            granted=format_credits(account.granted),
            consumed=format_credits(account.consumed),
            expired=format_credits(account.expired),
            clawed_back=format_credits(account.clawed_back),
            adjusted=format_credits(account.adjusted),
            voided=format_credits(account.voided),
            reversed=format_credits(account.reversed),
        ),
        lots=[lot_view(lot) for lot in burn_down_order([x for x in account.lots if x.spendable_at(now)])],
        perks=PerksView(priority_processing=perks.priority_processing, unlocked_features=list(perks.unlocked_features)),
        next_expiry=None if upcoming is None else _expiry(upcoming),
        expiring_within_days=window // 86_400_000,
        expiring=[_expiry(moment) for moment in expiring_within(account, now, window)],
        as_of=clock.to_iso(now),
    )


def ledger_page(
    store: LedgerStore, account_id: str, limit: int, cursor: str | None, page_max: int
) -> LedgerPageResponse:
    """Newest first, over the account's own entries and those of its slices: each stream is
    read newest first, and the page takes the newest of their heads, one at a time."""
    if not 1 <= limit <= page_max:
        raise InvalidRequest(f"limit must be between 1 and {page_max}")
    if cursor is None:
        bounds: dict[int | None, int | None] = {None: None}
        bounds.update({stream: None for stream in store.entry_streams(account_id)})
    else:
        bounds = dict(decode_cursor(cursor))
    pages = {stream: store.list_entries(account_id, limit, before, stream).entries for stream, before in bounds.items()}
    entries, after = merge_streams(pages, limit)
    return LedgerPageResponse(
        entries=[entry_view(entry) for entry in entries],
        next_cursor=encode_cursor(after) if after else None,
    )


def merge_streams(
    pages: dict[int | None, list[LedgerEntry]], limit: int
) -> tuple[list[LedgerEntry], dict[int | None, int]]:
    """Up to ``limit`` entries, newest first, from streams each read newest first; and where
    each stream continues (its seqs run 1, 2, 3..., so a stream continues while above 1)."""
    heads = {stream: 0 for stream in pages}
    taken: list[LedgerEntry] = []
    while len(taken) < limit:
        ready = [s for s in pages if heads[s] < len(pages[s])]
        if not ready:
            break
        stream = max(ready, key=lambda s: position(pages[s][heads[s]]))
        taken.append(pages[stream][heads[stream]])
        heads[stream] += 1
    after: dict[int | None, int] = {}
    for stream, entries in pages.items():
        if entries:
            # Below the last entry taken from it, or below its newest when none was.
            after[stream] = entries[heads[stream] - 1].seq if heads[stream] else entries[0].seq + 1
    return taken, {stream: seq for stream, seq in after.items() if seq > 1}


def position(entry: LedgerEntry) -> tuple[int, int, int]:
    """An entry's place in the account's order: its instant, then the account's own entries
    before the slices', by slice, then its seq in its stream."""
    return entry.created_at, -1 if entry.slice is None else entry.slice, entry.seq
