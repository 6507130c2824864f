"""Reads: an account's balance as the API shows it, and its ledger a page at a time."""

from __future__ import annotations

from tollbooth.app.ports import LedgerStore
from tollbooth.app.views import decode_cursor, encode_cursor, entry_view, lot_view
from tollbooth.contracts.http import BalanceResponse, LedgerPageResponse, NextExpiry, PerksView, Totals
from tollbooth.domain import clock
from tollbooth.domain.errors import InvalidRequest
from tollbooth.domain.expiry import expiring_within
from tollbooth.domain.ledger import Expiry, burn_down_order, next_expiry, perks_at
from tollbooth.domain.money import format_credits


def _expiry(moment: Expiry) -> NextExpiry:
    return NextExpiry(expires_at=clock.to_iso(moment.expires_at), amount=format_credits(moment.amount))


def balance(store: LedgerStore, account_id: str, now: int) -> BalanceResponse:
    """Always a fresh read: a balance never comes from a remembered state."""
    account = store.load_account(account_id)
    upcoming = next_expiry(account, now)
    perks = perks_at(account, now)
    window = store.expiry.warning_window
    return BalanceResponse(
        account_id=account_id,
        available=format_credits(max(0, account.available_at(now) - account.arrears)),
        arrears=format_credits(account.arrears),
        balance=format_credits(account.balance),
        totals=Totals(
            granted=format_credits(account.granted),
            consumed=format_credits(account.consumed),
            expired=format_credits(account.expired),
            clawed_back=format_credits(account.clawed_back),
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
    if not 1 <= limit <= page_max:
        raise InvalidRequest(f"limit must be between 1 and {page_max}")
    before = None if cursor is None else decode_cursor(cursor)
    page = store.list_entries(account_id, limit, before)
    return LedgerPageResponse(
        entries=[entry_view(entry) for entry in page.entries],
        next_cursor=None if page.next_seq is None else encode_cursor(page.next_seq),
    )
