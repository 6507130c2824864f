"""The HTTP contract of an account's history: its ledger entries, a page at a time."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tollbooth.contracts.common import Contract
from tollbooth.contracts.http import CreditsOut, DrawView, Timestamp


class UsageLineView(Contract):
    event_id: str
    feature: str
    quantity: int
    dimensions: dict[str, str]
    charged: CreditsOut
    unpaid: CreditsOut
    catalog_version: str
    occurred_at: Timestamp
    worker_id: str
    resources: dict[str, Any] = Field(description="What the usage took: tokens, GPU time, provider cost")
    draws: list[DrawView] | None = Field(default=None, description="The lots this record drew from")


class CallerView(Contract):
    kind: Literal["user", "service", "system"]
    id: str = Field(description="The user's subject, the service's IAM role name, or the job")


class LedgerEntryView(Contract):
    entry_id: str
    seq: int = Field(description="The entry's number in its stream (the account's own, or its slice's): 1, 2, 3...")
    slice: int | None = Field(
        default=None, description="The escrow slice that wrote it (a busy account's consumes); null: the account"
    )
    kind: str
    amount: CreditsOut
    balance_after: CreditsOut | None = Field(
        description="The account's balance after it; null for a slice's entries (a slice knows only its own credits)"
    )
    created_at: Timestamp
    idempotency_key: str | None = None
    feature: str | None = None
    quantity: int | None = None
    dimensions: dict[str, str] | None = None
    draws: list[DrawView] | None = None
    catalog_version: str | None = None
    lot_ids: list[str] | None = None
    package_id: str | None = None
    payment_reference: str | None = None
    source: str | None = None
    reason: str | None = None
    records: list[UsageLineView] | None = Field(default=None, description="The usage records a usage entry charged")
    unpaid: CreditsOut | None = Field(default=None, description="Usage the credits did not cover (arrears)")
    arrears_paid: CreditsOut | None = None
    plan_id: str | None = None
    period_start: Timestamp | None = None
    period_end: Timestamp | None = None
    rolled_over: list[DrawView] | None = None
    lot_id: str | None = None
    expires_at: Timestamp | None = None
    price_minor: int | None = None
    currency: str | None = None
    lot_granted: CreditsOut | None = None
    breakage_minor: int | None = Field(default=None, description="What the expired credits cost, in minor units")
    caller: CallerView | None = Field(default=None, description="Who asked for the change (API requests)")
    # A refund: the money, the credits clawed back from the lots (``draws``), what was spent.
    amount_minor: int | None = Field(default=None, description="A refund's money, in the payment's minor unit")
    refunded_minor: int | None = Field(default=None, description="Money refunded of the payment so far")
    paid_minor: int | None = Field(default=None, description="Money the refunded payment paid")
    payment_entry_id: str | None = None
    clawed_back: CreditsOut | None = None
    unrecovered: CreditsOut | None = Field(default=None, description="Credits a refund owed back, already spent")
    refund_policy: str | None = None
    # Credits that came back into a refunded payment's lot or a voided lot, taken by what the
    # refund or the void still claimed of it (``draws``: from which lots).
    claim: str | None = Field(
        default=None, description="The claim that took credits that came back: debt, absorb (a refund's), or void"
    )
    came_back_with: str | None = Field(default=None, description="The entry that gave those credits back")
    actor: str | None = Field(
        default=None, description="The operator or system that asked (refunds, adjustments, voids, reversals)"
    )
    # A reversal: the charge it gave back (a consume, or a usage record), and how.
    charge_entry_id: str | None = None
    event_id: str | None = Field(default=None, description="A reversal's usage record")
    charged: CreditsOut | None = Field(default=None, description="What the reversed charge took")
    reversed_total: CreditsOut | None = Field(default=None, description="Given back of the charge so far")
    arrears_reduced: CreditsOut | None = None
    written_off: CreditsOut | None = Field(
        default=None, description="Credits of lots expired meanwhile, written off (reversals, holds)"
    )
    # A hold's entries (hold, capture, release).
    hold_id: str | None = None
    credits: CreditsOut | None = Field(default=None, description="What the hold reserved when placed")
    captured: CreditsOut | None = Field(default=None, description="What the capture charged for the job")
    from_hold: CreditsOut | None = None
    released: CreditsOut | None = Field(default=None, description="What went back to the lots")
    expired: bool | None = Field(default=None, description="A release by the sweep, at the hold's expiry")


class LedgerPageResponse(Contract):
    entries: list[LedgerEntryView]
    next_cursor: str | None
