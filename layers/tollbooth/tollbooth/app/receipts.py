"""The answers a mutation keeps for replay: the one place the use cases know the HTTP
contract's bodies, by decision, because an idempotency record must return the exact first
answer, written in the same transaction as the change."""

from __future__ import annotations

from dataclasses import replace

from tollbooth.app.idempotency import Idempotency
from tollbooth.app.views import lot_view
from tollbooth.contracts.holds import CaptureResponse, HoldResponse, ReleaseResponse
from tollbooth.contracts.http import ConsumeResponse, DrawView, GrantResponse
from tollbooth.contracts.money_back import (
    AdjustmentResponse,
    DisputeResponse,
    RefundResponse,
    ReversalResponse,
    VoidResponse,
)
from tollbooth.domain import clock
from tollbooth.domain.hold_state import Hold
from tollbooth.domain.ledger import Account, IdempotencyRecord, Mutation
from tollbooth.domain.money import format_credits
from tollbooth.domain.pricing import Charge


def _kept(mutation: Mutation, idem: Idempotency, status: int, body: dict) -> Mutation:  # type: ignore[type-arg]
    entry = mutation.entry
    assert entry is not None, "a request's mutation writes an entry"
    return replace(mutation, records=(IdempotencyRecord(idem.key, idem.fingerprint, status, body, entry.seq),))


def with_credit_receipt(mutation: Mutation, idem: Idempotency, now: int) -> Mutation:
    """201: the entry, the lots granted (after any arrears they paid) and what is available."""
    entry = mutation.entry
    assert entry is not None
    body = GrantResponse(
        entry_id=entry.entry_id,
        lots=[lot_view(lot) for lot in mutation.new_lots],
        balance=format_credits(mutation.account_after.available_at(now)),
    ).model_dump(mode="json")
    return _kept(mutation, idem, 201, body)


def with_consume_receipt(mutation: Mutation, charge: Charge, idem: Idempotency, now: int) -> Mutation:
    """200: the entry, what was charged, and what is available after it (unknown to a slice)."""
    entry = mutation.entry
    assert entry is not None
    # A slice knows only what it holds; the account's own side, while slices hold credits, too.
    whole = not mutation.spend and not mutation.account.escrow
    available = format_credits(mutation.account_after.available_at(now)) if whole else None
    body = ConsumeResponse(
        entry_id=entry.entry_id,
        charged=format_credits(charge.amount),
        balance=available,
        catalog_version=charge.catalog_version,
    ).model_dump(mode="json")
    return _kept(mutation, idem, 200, body)


def with_adjustment_receipt(mutation: Mutation, idem: Idempotency) -> Mutation:
    """201: the entry, the credits added or taken out, what became arrears, the balance."""
    entry = mutation.entry
    assert entry is not None and entry.kind == "adjustment"
    body = AdjustmentResponse(
        entry_id=entry.entry_id,
        credits=format_credits(entry.amount),
        unpaid=format_credits(entry.details.get("unpaid", 0)),
        lot_ids=list(entry.details.get("lot_ids", [])),
        balance=format_credits(mutation.account_after.balance),
    ).model_dump(mode="json")
    return _kept(mutation, idem, 201, body)


def with_void_receipt(mutation: Mutation, idem: Idempotency) -> Mutation:
    """201: the entry, the lot, the credits it removed, the balance."""
    entry = mutation.entry
    assert entry is not None and entry.kind == "void"
    body = VoidResponse(
        entry_id=entry.entry_id,
        lot_id=entry.details["lot_id"],
        voided=format_credits(-entry.amount),
        balance=format_credits(mutation.account_after.balance),
    ).model_dump(mode="json")
    return _kept(mutation, idem, 201, body)


def with_dispute_receipt(
    account: Account, mutation: Mutation | None, reference: str, status: str, idem: Idempotency
) -> Mutation:
    """201 when the dispute moved (its entry, what it froze or clawed back), 200 when this
    delivery changed nothing (the dispute's status as it stands): kept for replays either way."""
    after = account if mutation is None else mutation.account_after
    entry = None if mutation is None else mutation.entry
    details = {} if entry is None else entry.details
    body = DisputeResponse(
        entry_id=None if entry is None else entry.entry_id,
        payment_reference=reference,
        status=status,  # type: ignore[arg-type]
        changed=entry is not None,
        frozen=format_credits(sum(lot.remaining for lot in after.lots if lot.frozen)),
        clawed_back=format_credits(details.get("clawed_back", 0)),
        unrecovered=format_credits(details.get("unrecovered", 0)),
        balance=format_credits(after.balance),
    ).model_dump(mode="json")
    if mutation is None:  # nothing moves, but the answer is kept: a replay gets it
        record = IdempotencyRecord(idem.key, idem.fingerprint, 200, body, account.seq)
        return Mutation(account, records=(record,))
    return _kept(mutation, idem, 201, body)


def with_refund_receipt(mutation: Mutation, idem: Idempotency) -> Mutation:
    """201: the refund's entry, the money it returns, the credits it took back, what was
    already spent (and what became of it), and the ledger balance after it."""
    entry = mutation.entry
    assert entry is not None and entry.kind == "refund"
    details = entry.details
    body = RefundResponse(
        entry_id=entry.entry_id,
        payment_reference=details["payment_reference"],
        refunded_minor=details["amount_minor"],
        refunded_total_minor=details["refunded_minor"],
        currency=details["currency"],
        clawed_back=format_credits(details["clawed_back"]),
        unrecovered=format_credits(details["unrecovered"]),
        refund_policy=details["refund_policy"],
        balance=format_credits(mutation.account_after.balance),
    ).model_dump(mode="json")
    return _kept(mutation, idem, 201, body)


def with_reversal_receipt(mutation: Mutation, idem: Idempotency) -> Mutation:
    """201: the reversal's entry, the credits it gave back (and where), what the charge has
    had given back so far, and the ledger balance after it."""
    entry = mutation.entry
    assert entry is not None and entry.kind == "reversal"
    details = entry.details
    body = ReversalResponse(
        entry_id=entry.entry_id,
        charge_entry_id=details["charge_entry_id"],
        event_id=details["event_id"],
        reversed=format_credits(entry.amount),
        reversed_total=format_credits(details["reversed_total"]),
        charged=format_credits(details["charged"]),
        arrears_reduced=format_credits(details["arrears_reduced"]),
        arrears_paid=format_credits(details.get("arrears_paid", 0)),
        written_off=format_credits(details["written_off"]),
        returned=[DrawView(lot_id=d["lot_id"], amount=format_credits(d["amount"])) for d in details["draws"]],
        balance=format_credits(mutation.account_after.balance),
    ).model_dump(mode="json")
    return _kept(mutation, idem, 201, body)


def _available(account: Account, now: int, spend: bool = False) -> str | None:
    """What the account may spend, when it is whole: not written on a slice (``spend``), and
    no slice holds credits of it."""
    if spend or account.escrow:
        return None
    return format_credits(max(0, account.available_at(now) - account.arrears))


def with_hold_receipt(mutation: Mutation, idem: Idempotency, now: int) -> Mutation:
    """201: the hold, what it took of each lot, and what is available after it."""
    assert mutation.hold is not None and mutation.entry is not None
    hold = mutation.hold.after
    body = HoldResponse(
        hold_id=hold.hold_id,
        status=hold.status,
        credits=format_credits(hold.credits),
        expires_at=clock.to_iso(hold.expires_at),
        lots=[DrawView(lot_id=p.lot_id, amount=format_credits(p.remaining)) for p in hold.portions],
        entry_id=mutation.entry.entry_id,
        available=_available(mutation.account_after, now, mutation.spend),
    ).model_dump(mode="json")
    return _kept(mutation, idem, 201, body)


def with_capture_receipt(mutation: Mutation, idem: Idempotency) -> Mutation:
    """201: what the job was charged, where from, and what went back."""
    entry, after = mutation.entry, mutation.account_after
    assert entry is not None and entry.kind == "capture"
    details = entry.details
    body = CaptureResponse(
        hold_id=details["hold_id"],
        entry_id=entry.entry_id,
        **{name: format_credits(details[name]) for name in ("captured", "from_hold", "unpaid", "released")},
        arrears_paid=format_credits(details.get("arrears_paid", 0)),
        written_off=format_credits(details["written_off"]),
        balance=None if mutation.spend or after.escrow else format_credits(after.balance),
    ).model_dump(mode="json")
    return _kept(mutation, idem, 201, body)


def with_release_receipt(
    account: Account, hold: Hold, mutation: Mutation | None, idem: Idempotency, now: int, *, on_slice: bool = False
) -> Mutation:
    """201 when this request released the hold, 200 when it was released or expired
    already (as it stands): kept for replays either way. ``on_slice``: ``account`` is a
    slice's view (``domain.slice_holds``)."""
    entry = None if mutation is None else mutation.entry
    details = {} if entry is None else entry.details
    after = account if mutation is None else mutation.account_after
    status = hold.status if mutation is None or mutation.hold is None else mutation.hold.after.status
    body = ReleaseResponse(
        hold_id=hold.hold_id,
        status=status,
        changed=entry is not None,
        entry_id=None if entry is None else entry.entry_id,
        released=format_credits(details.get("released", 0)),
        arrears_paid=format_credits(details.get("arrears_paid", 0)),
        written_off=format_credits(details.get("written_off", 0)),
        available=_available(after, now, on_slice),
    ).model_dump(mode="json")
    if mutation is None:  # nothing moves, but the answer is kept: a replay gets it
        kept = (IdempotencyRecord(idem.key, idem.fingerprint, 200, body, account.seq),)
        return Mutation(account, records=kept, spend=on_slice)
    return _kept(mutation, idem, 201, body)
