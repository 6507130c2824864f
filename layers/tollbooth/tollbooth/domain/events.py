"""Domain events: the detail of every event Tollbooth publishes (docs/events.md).

Each event type has a strict, frozen pydantic model: the contract a consumer relies on.
The functions that build events build them through their model and return its JSON form,
the dict that goes into the account's outbox and becomes the EventBridge ``Detail``.

Every event has a stable ``event_id`` derived from what it is about (for example
``credits.expired:<account>:<lot>``). Delivery is at least once, so a consumer
deduplicates by that id.

Each model's JSON Schema is committed under docs/events/ (a test keeps it in step);
to regenerate the files after changing a model, from the repository root:

    python -m tollbooth.domain.events [DIRECTORY]    # default: docs/events
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tollbooth.domain import clock
from tollbooth.domain.ledger import LedgerEntry, Lot, LotSource
from tollbooth.domain.money import format_credits

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
        description="`credits.expired:<account_id>:<lot_id>`: deduplicate by it.",
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
    """A refund took back the credits its payment granted, in proportion: sent with `purchase.refunded`."""

    event_id: str = Field(
        pattern=r"^credits\.clawed_back:",
        description="`credits.clawed_back:<account_id>:<entry_id>`: deduplicate by it.",
    )
    type: Literal["credits.clawed_back"] = Field(description="`credits.clawed_back`; also the EventBridge detail-type.")
    clawed_back: Credits = Field(description="Credits taken back from the payment's lots.")
    unrecovered: Credits = Field(description="Credits the refund owed back that had already been spent.")
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
    """An operator removed what was left of a lot: sent once per `void` ledger entry."""

    event_id: str = Field(
        pattern=r"^lot\.voided:",
        description="`lot.voided:<account_id>:<lot_id>`: deduplicate by it (a lot is voided once).",
    )
    type: Literal["lot.voided"] = Field(description="`lot.voided`; also the EventBridge detail-type.")
    lot_id: str = Field(min_length=1, description="The lot.")
    source: LotSource = Field(description="How the lot was granted.")
    amount: Credits = Field(description="Credits removed: what the lot still held.")
    reason: str = Field(min_length=1, description="Why, as the operator said.")
    actor: str = Field(min_length=1, description="The operator or system that asked.")
    entry_id: str = Field(min_length=1, description="The `void` ledger entry.")
    occurred_at: Instant = Field(description="When the void was committed (ISO-8601, UTC).")


# Every event Tollbooth publishes, by type (its EventBridge detail-type).
EVENT_MODELS: dict[str, type[BaseModel]] = {
    "credits.expiring": CreditsExpiring,
    "credits.expired": CreditsExpired,
    "account.overdrawn": AccountOverdrawn,
    "purchase.refunded": PurchaseRefunded,
    "credits.clawed_back": CreditsClawedBack,
    "credits.adjusted": CreditsAdjusted,
    "lot.voided": LotVoided,
}
LOT_EVENT_MODELS: dict[str, type[LotEvent]] = {"credits.expiring": CreditsExpiring, "credits.expired": CreditsExpired}


def lot_event(kind: str, account_id: str, lot: Lot, amount: int, now: int, **extra: Any) -> dict[str, Any]:
    """The detail of a credits.* event about one lot (``extra``: the fields only ``kind`` has)."""
    event = LOT_EVENT_MODELS[kind].model_validate(
        {
            "schema_version": SCHEMA_VERSION,
            "event_id": f"{kind}:{account_id}:{lot.lot_id}",
            "type": kind,
            "account_id": account_id,
            "lot_id": lot.lot_id,
            "source": lot.source,
            "package_id": lot.package_id,
            "plan_id": lot.plan_id,
            "amount": format_credits(amount),
            "expires_at": None if lot.expires_at is None else clock.to_iso(lot.expires_at),
            "occurred_at": clock.to_iso(now),
            **extra,
        }
    )
    return event.model_dump(mode="json")


def overdrawn_event(account_id: str, entry: LedgerEntry, arrears: int, now: int) -> dict[str, Any]:
    """``account.overdrawn``: the account went into arrears (once per time it does)."""
    return AccountOverdrawn(
        schema_version=SCHEMA_VERSION,
        event_id=f"account.overdrawn:{account_id}:{entry.seq}",
        type="account.overdrawn",
        account_id=account_id,
        arrears=format_credits(arrears),
        entry_id=entry.entry_id,
        occurred_at=clock.to_iso(now),
    ).model_dump(mode="json")


def refund_events(account_id: str, entry: LedgerEntry, now: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``purchase.refunded`` and ``credits.clawed_back`` for a committed ``refund`` entry."""
    details = entry.details
    common: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "account_id": account_id, "entry_id": entry.entry_id}
    occurred = clock.to_iso(now)
    refunded = PurchaseRefunded(
        **common,
        event_id=f"purchase.refunded:{account_id}:{entry.entry_id}",
        type="purchase.refunded",
        payment_reference=details["payment_reference"],
        amount_minor=details["amount_minor"],
        refunded_total_minor=details["refunded_minor"],
        paid_minor=details["paid_minor"],
        currency=details["currency"],
        occurred_at=occurred,
    )
    clawed = CreditsClawedBack(
        **common,
        event_id=f"credits.clawed_back:{account_id}:{entry.entry_id}",
        type="credits.clawed_back",
        clawed_back=format_credits(details["clawed_back"]),
        unrecovered=format_credits(details["unrecovered"]),
        refund_policy=details["refund_policy"],
        occurred_at=occurred,
    )
    return refunded.model_dump(mode="json"), clawed.model_dump(mode="json")


def adjusted_event(account_id: str, entry: LedgerEntry, now: int) -> dict[str, Any]:
    """``credits.adjusted`` for a committed ``adjustment`` entry."""
    event = CreditsAdjusted(
        schema_version=SCHEMA_VERSION,
        event_id=f"credits.adjusted:{account_id}:{entry.entry_id}",
        type="credits.adjusted",
        account_id=account_id,
        credits=format_credits(entry.amount),
        unpaid=format_credits(entry.details.get("unpaid", 0)),
        reason=entry.details["reason"],
        actor=entry.details["actor"],
        entry_id=entry.entry_id,
        occurred_at=clock.to_iso(now),
    )
    return event.model_dump(mode="json")


def voided_event(account_id: str, entry: LedgerEntry, lot: Lot, now: int) -> dict[str, Any]:
    """``lot.voided`` for a committed ``void`` entry."""
    event = LotVoided(
        schema_version=SCHEMA_VERSION,
        event_id=f"lot.voided:{account_id}:{lot.lot_id}",
        type="lot.voided",
        account_id=account_id,
        lot_id=lot.lot_id,
        source=lot.source,
        amount=format_credits(lot.remaining),
        reason=entry.details["reason"],
        actor=entry.details["actor"],
        entry_id=entry.entry_id,
        occurred_at=clock.to_iso(now),
    )
    return event.model_dump(mode="json")


def event_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of the detail of a ``kind`` event, in draft 4: the dialect the
    EventBridge schema registry takes (pydantic renders 2020-12; each constant becomes a
    one-value ``enum``, which every draft reads). Its ``id`` and title name the detail-type."""
    schema = EVENT_MODELS[kind].model_json_schema(mode="serialization")
    schema["description"] = " ".join(schema["description"].split())  # the docstring, on one line
    for field in schema["properties"].values():
        if "const" in field:
            field["enum"] = [field.pop("const")]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "id": f"urn:tollbooth:events:{kind}:v{SCHEMA_VERSION}",
        **schema,
        "title": kind,
    }


def schema_files() -> dict[str, str]:
    """Each event's schema file, by its name under docs/events/: ``<type>.schema.json``."""
    return {f"{kind}.schema.json": json.dumps(event_schema(kind), indent=2) + "\n" for kind in EVENT_MODELS}


def write_schema_files(directory: Path = SCHEMA_DIRECTORY) -> list[Path]:
    """Write every schema file into ``directory``, removing schema files of events that no
    longer exist; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    files = schema_files()
    for stale in directory.glob("*.schema.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
        written.append(directory / name)
    return written


if __name__ == "__main__":
    for path in write_schema_files(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIRECTORY):
        print(path)
