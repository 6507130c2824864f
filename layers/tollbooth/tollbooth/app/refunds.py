"""Finding what a refund needs: the payment, the entry that granted its credits, and the
lots it granted, as that entry recorded them (a spent lot has left the store; its terms
have not)."""

from __future__ import annotations

from tollbooth.app.ports import LedgerStore
from tollbooth.domain.errors import InvalidRequest, PaymentNotFound
from tollbooth.domain.grants import lot_from_terms
from tollbooth.domain.refunds import Payment


def find_payment(store: LedgerStore, account_id: str, reference: str) -> Payment:
    """The payment ``reference`` made for ``account_id``, as it stands now; PaymentNotFound
    when no such payment granted this account credits."""
    record = store.find_payment(reference)
    if record is None or record.account_id != account_id:
        raise PaymentNotFound(f"no payment {reference!r} granted credits to this account")
    entry = store.find_entry(account_id, record.seq)
    if entry is None or entry.entry_id != record.entry_id:
        raise PaymentNotFound(f"the entry of payment {reference!r} is missing")
    terms = entry.details.get("lots")
    if not isinstance(terms, list):
        raise InvalidRequest(
            f"payment {reference!r} was recorded before its lots' terms were kept; refund it by an adjustment"
        )
    # A rollover lot holds credits an earlier period paid for: not this payment's to claw back.
    lots = tuple(lot for lot in map(lot_from_terms, terms) if lot.source != "rollover")
    return Payment(reference, record.entry_id, lots, record.refunded_minor, record.dispute)
