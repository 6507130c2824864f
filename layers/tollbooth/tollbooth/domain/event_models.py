"""The models of the events Tollbooth publishes (docs/events.md): one strict, frozen
pydantic model per event type, the contract a consumer relies on. ``domain.events``
builds events through them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tollbooth.domain.ledger import LotSource

SCHEMA_VERSION: Literal[1] = 1
JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-04/schema#"
SCHEMA_DIRECTORY = Path("docs/events")

# Credits as the API shows them: a decimal string with exactly three places, e.g. "12.500".
Credits = Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]{3}$")]
SignedCredits = Annotated[str, Field(pattern=r"^-?[0-9]+\.[0-9]{3}$")]
# An instant as clock.to_iso renders it: ISO-8601, UTC, milliseconds, e.g. "2027-11-25T10:00:00.000Z".
Instant = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$",
        json_schema_extra={"format": "date-time"},
    ),
]


class EventDetail(BaseModel):
    """What the detail of every Tollbooth event carries."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(
        description="The version of this event's shape. The detail has exactly the fields listed; "
        "a change to them comes with a new version."
    )
    event_id: str = Field(
        min_length=1,
        description="Stable id naming what the event is about, never when it was sent: deduplicate by it.",
    )
    type: str = Field(description="The event's type; also the EventBridge detail-type.")
    account_id: str = Field(min_length=1, description="The account the event is about.")


class LotEvent(EventDetail):
    """What an event about one lot of credits carries."""

    lot_id: str = Field(min_length=1, description="The lot.")
    source: LotSource = Field(description="How the lot was granted.")
    package_id: str | None = Field(description="The package that granted the lot, if a package did.")
    plan_id: str | None = Field(description="The plan that granted the lot, if a plan did.")
    amount: Credits = Field(description="Credits, as a decimal string with three places.")
    expires_at: Instant = Field(description="When the lot stops being spendable (ISO-8601, UTC).")
    occurred_at: Instant = Field(description="When the event was recorded (ISO-8601, UTC).")


class CreditsExpiring(LotEvent):
    """A lot's credits expire soon: sent once per lot, ExpiryWarningDays (7 by default) before
    it expires, while it still holds spendable credits."""

    event_id: str = Field(
        pattern=r"^credits\.expiring:",
        description="`credits.expiring:<account_id>:<lot_id>`: deduplicate by it.",
    )
    type: Literal["credits.expiring"] = Field(description="`credits.expiring`; also the EventBridge detail-type.")
    amount: Credits = Field(description='Credits left in the lot when the warning was recorded, e.g. "120.500".')
    occurred_at: Instant = Field(description="When the sweep recorded the warning (ISO-8601, UTC).")


class CreditsExpired(LotEvent):
    """A lot's remaining credits were written off at its expiry: sent once per lot, after the
    `expire` ledger entry is committed. Fully spent lots expire silently."""

    event_id: str = Field(
        pattern=r"^credits\.expired:",
        description=(
            "`credits.expired:<account_id>:<lot_id>` from the sweep; a reversal that gives credits back to a lot "
            "expired since writes them off with `credits.expired:<account_id>:<lot_id>:reversal:<seq>`. "
            "Deduplicate by it."
        ),
    )
    type: Literal["credits.expired"] = Field(description="`credits.expired`; also the EventBridge detail-type.")
    amount: Credits = Field(description='The credits written off (the breakage), e.g. "700.000".')
    occurred_at: Instant = Field(description="When the write-off was committed (ISO-8601, UTC).")
    entry_id: str = Field(min_length=1, description="The `expire` ledger entry.")
    breakage_minor: int | None = Field(
        description="What the written-off credits cost the buyer, in minor units of `currency`: "
        "price_minor x amount / granted, rounded half-even; null for lots granted free of a price."
    )
    currency: str | None = Field(description="The lot's currency (ISO 4217), or null.")


class AccountOverdrawn(EventDetail):
    """The account went into arrears: usage was performed that its credits could not pay.
    Sent once each time the account goes from no arrears into arrears."""

    event_id: str = Field(
        pattern=r"^account\.overdrawn:",
        description="`account.overdrawn:<account_id>:<seq>`, seq being the ledger entry's number: deduplicate by it.",
    )
    type: Literal["account.overdrawn"] = Field(description="`account.overdrawn`; also the EventBridge detail-type.")
    arrears: Credits = Field(
        description='The account\'s arrears after the charge: the usage its lots could not pay, e.g. "12.500".'
    )
    entry_id: str = Field(min_length=1, description="The `usage` ledger entry that went into arrears.")
    occurred_at: Instant = Field(description="When the usage was charged (ISO-8601, UTC).")


class PurchaseRefunded(EventDetail):
    """Money was refunded of a payment: sent once per refund, after its `refund` ledger entry is committed."""

    event_id: str = Field(
        pattern=r"^purchase\.refunded:",
        description="`purchase.refunded:<account_id>:<entry_id>`: deduplicate by it.",
    )
    type: Literal["purchase.refunded"] = Field(description="`purchase.refunded`; also the EventBridge detail-type.")
    payment_reference: str = Field(min_length=1, description="The payment refunded.")
    amount_minor: int = Field(description="The money this refund returns, in minor units of `currency`.")
    refunded_total_minor: int = Field(description="The money refunded of the payment so far, this refund included.")
    paid_minor: int = Field(description="The money the payment paid.")
    currency: str | None = Field(description="The payment's currency (ISO 4217).")
    entry_id: str = Field(min_length=1, description="The `refund` ledger entry.")
    occurred_at: Instant = Field(description="When the refund was committed (ISO-8601, UTC).")


class CreditsClawedBack(EventDetail):
    """A refund took back the credits its payment granted, in proportion: sent with `purchase.refunded`.
    Also sent alone when credits the refund counted as unrecovered come back into the payment's
    lots (a hold released, a charge reversed) and are taken then: `unrecovered` is 0."""

    event_id: str = Field(
        pattern=r"^credits\.clawed_back:",
        description="`credits.clawed_back:<account_id>:<entry_id>`: deduplicate by it.",
    )
    type: Literal["credits.clawed_back"] = Field(description="`credits.clawed_back`; also the EventBridge detail-type.")
    clawed_back: Credits = Field(description="Credits taken back from the payment's lots.")
    unrecovered: Credits = Field(
        description=("Credits the refund owed back that had been spent or were held (taken if they come back).")
    )
    refund_policy: Literal["debt", "absorb"] = Field(
        description="What became of the unrecovered credits: arrears (`debt`) or written off (`absorb`)."
    )
    entry_id: str = Field(min_length=1, description="The `refund` ledger entry.")
    occurred_at: Instant = Field(description="When the refund was committed (ISO-8601, UTC).")


class CreditsAdjusted(EventDetail):
    """An operator corrected the account's credits: sent once per `adjustment` ledger entry."""

    event_id: str = Field(
        pattern=r"^credits\.adjusted:",
        description="`credits.adjusted:<account_id>:<entry_id>`: deduplicate by it.",
    )
    type: Literal["credits.adjusted"] = Field(description="`credits.adjusted`; also the EventBridge detail-type.")
    credits: SignedCredits = Field(description="Credits added (positive) or taken out (negative).")
    unpaid: Credits = Field(description="Of credits taken out, what the lots could not give: added to arrears.")
    reason: str = Field(min_length=1, description="Why, as the operator said.")
    actor: str = Field(min_length=1, description="The operator or system that asked.")
    entry_id: str = Field(min_length=1, description="The `adjustment` ledger entry.")
    occurred_at: Instant = Field(description="When the adjustment was committed (ISO-8601, UTC).")


class LotVoided(EventDetail):
    """An operator removed what was left of a lot, or credits that came back to it later: one
    per lot of a `void` ledger entry."""

    event_id: str = Field(
        pattern=r"^lot\.voided:",
        description=(
            "`lot.voided:<account_id>:<lot_id>`: deduplicate by it (a lot is voided once). Credits that come "
            "back to a voided lot later (a hold released, a charge reversed) are removed too: "
            "`lot.voided:<account_id>:<lot_id>:<entry_id>`."
        ),
    )
    type: Literal["lot.voided"] = Field(description="`lot.voided`; also the EventBridge detail-type.")
    lot_id: str = Field(min_length=1, description="The lot.")
    source: LotSource = Field(description="How the lot was granted.")
    amount: Credits = Field(description="Credits removed: what the lot still held.")
    reason: str = Field(min_length=1, description="Why, as the operator said.")
    actor: str = Field(min_length=1, description="The operator or system that asked.")
    entry_id: str = Field(min_length=1, description="The `void` ledger entry.")
    occurred_at: Instant = Field(description="When the void was committed (ISO-8601, UTC).")


class DisputeEvent(EventDetail):
    """What every dispute.* event carries."""

    payment_reference: str = Field(min_length=1, description="The payment disputed.")
    reason: str = Field(min_length=1, description="Why, as the operator or payment system said.")
    actor: str = Field(min_length=1, description="The operator or system that reported it.")
    entry_id: str = Field(min_length=1, description="The `dispute` ledger entry.")
    occurred_at: Instant = Field(description="When the transition was committed (ISO-8601, UTC).")


class DisputeOpened(DisputeEvent):
    """A payment's dispute was opened: what is left of its credits is frozen."""

    event_id: str = Field(
        pattern=r"^dispute\.opened:", description="`dispute.opened:<account_id>:<payment_reference>`."
    )
    type: Literal["dispute.opened"] = Field(description="`dispute.opened`; also the EventBridge detail-type.")
    frozen: Credits = Field(description="Credits frozen: what the payment's lots still held.")


class DisputeWon(DisputeEvent):
    """A payment's dispute was won: its frozen credits are spendable again."""

    event_id: str = Field(pattern=r"^dispute\.won:", description="`dispute.won:<account_id>:<payment_reference>`.")
    type: Literal["dispute.won"] = Field(description="`dispute.won`; also the EventBridge detail-type.")
    unfrozen: Credits = Field(description="Credits freed.")


class DisputeLost(DisputeEvent):
    """A payment's dispute was lost: its credits were clawed back as a full refund claws them."""

    event_id: str = Field(pattern=r"^dispute\.lost:", description="`dispute.lost:<account_id>:<payment_reference>`.")
    type: Literal["dispute.lost"] = Field(description="`dispute.lost`; also the EventBridge detail-type.")
    clawed_back: Credits = Field(description="Credits taken back from the payment's lots.")
    unrecovered: Credits = Field(description="Credits owed back that had already been spent.")
    amount_minor: int = Field(description="The money the dispute took back, in minor units of `currency`.")
    currency: str | None = Field(description="The payment's currency (ISO 4217).")


# Every event Tollbooth publishes, by type (its EventBridge detail-type).
class ChargeReversed(EventDetail):
    """A charge was given back (a failed generation, or one usage record): sent once per
    `reversal` ledger entry."""

    event_id: str = Field(
        pattern=r"^charge\.reversed:",
        description="`charge.reversed:<account_id>:<entry_id>`: deduplicate by it.",
    )
    type: Literal["charge.reversed"] = Field(description="`charge.reversed`; also the EventBridge detail-type.")
    charge_entry_id: str = Field(min_length=1, description="The `consume` or `usage` entry that charged.")
    usage_event_id: str | None = Field(description="The usage record reversed, for a `usage` entry; else null.")
    credits: Credits = Field(description="Credits this reversal gave back.")
    reversed_total: Credits = Field(description="Credits given back of the charge so far, this reversal included.")
    charged: Credits = Field(description="Credits the charge took.")
    arrears_reduced: Credits = Field(description="Of the credits, what reduced the arrears the charge had added.")
    written_off: Credits = Field(description="Of the credits, what went back to lots expired since: written off.")
    reason: str = Field(min_length=1, description="Why, as the operator or system said.")
    actor: str = Field(min_length=1, description="The operator or system that asked.")
    entry_id: str = Field(min_length=1, description="The `reversal` ledger entry.")
    occurred_at: Instant = Field(description="When the reversal was committed (ISO-8601, UTC).")


class HoldEvent(EventDetail):
    """What every hold.* event carries."""

    hold_id: str = Field(min_length=1, description="The hold.")
    credits: Credits = Field(description="Credits the hold reserved when placed.")
    feature: str | None = Field(description="The feature it reserved for; null for a hold of bare credits.")
    entry_id: str = Field(min_length=1, description="The ledger entry of this change.")
    occurred_at: Instant = Field(description="When the change was committed (ISO-8601, UTC).")


class HoldPlaced(HoldEvent):
    """Credits were reserved for a job: they left `available` at once."""

    event_id: str = Field(pattern=r"^hold\.placed:", description="`hold.placed:<account_id>:<hold_id>`.")
    type: Literal["hold.placed"] = Field(description="`hold.placed`; also the EventBridge detail-type.")
    expires_at: Instant = Field(description="When the hold releases itself unless captured first.")


class HoldFreed(HoldEvent):
    """What every hold.* event that ends a hold carries: where what it held went."""

    released: Credits = Field(description="What the hold held (beyond any charge), back in its lots.")
    written_off: Credits = Field(description="What it held of lots expired meanwhile: written off.")


class HoldCaptured(HoldFreed):
    """The job's cost was charged, once: from the hold first, the rest released."""

    event_id: str = Field(pattern=r"^hold\.captured:", description="`hold.captured:<account_id>:<hold_id>`.")
    type: Literal["hold.captured"] = Field(description="`hold.captured`; also the EventBridge detail-type.")
    captured: Credits = Field(description="Credits charged for the job.")
    from_hold: Credits = Field(description="Of them, what the hold paid.")
    unpaid: Credits = Field(description="Of them, what no credits could pay: added to arrears.")


class HoldReleased(HoldFreed):
    """The hold was released by its caller: its credits are back in their lots."""

    event_id: str = Field(pattern=r"^hold\.released:", description="`hold.released:<account_id>:<hold_id>`.")
    type: Literal["hold.released"] = Field(description="`hold.released`; also the EventBridge detail-type.")


class HoldExpired(HoldFreed):
    """The hold reached its expiry uncaptured: the sweep released it."""

    event_id: str = Field(pattern=r"^hold\.expired:", description="`hold.expired:<account_id>:<hold_id>`.")
    type: Literal["hold.expired"] = Field(description="`hold.expired`; also the EventBridge detail-type.")


EVENT_MODELS: dict[str, type[BaseModel]] = {
    "credits.expiring": CreditsExpiring,
    "credits.expired": CreditsExpired,
    "account.overdrawn": AccountOverdrawn,
    "purchase.refunded": PurchaseRefunded,
    "credits.clawed_back": CreditsClawedBack,
    "credits.adjusted": CreditsAdjusted,
    "lot.voided": LotVoided,
    "dispute.opened": DisputeOpened,
    "dispute.won": DisputeWon,
    "dispute.lost": DisputeLost,
    "charge.reversed": ChargeReversed,
    "hold.placed": HoldPlaced,
    "hold.captured": HoldCaptured,
    "hold.released": HoldReleased,
    "hold.expired": HoldExpired,
}
LOT_EVENT_MODELS: dict[str, type[LotEvent]] = {"credits.expiring": CreditsExpiring, "credits.expired": CreditsExpired}
