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
from typing import Any

from tollbooth.domain import clock
from tollbooth.domain.event_models import (
    EVENT_MODELS,
    JSON_SCHEMA_DIALECT,
    LOT_EVENT_MODELS,
    SCHEMA_DIRECTORY,
    SCHEMA_VERSION,
    AccountOverdrawn,
    ChargeReversed,
    CreditsAdjusted,
    CreditsClawedBack,
    LotVoided,
    PurchaseRefunded,
)
from tollbooth.domain.hold_state import Hold
from tollbooth.domain.ledger import LedgerEntry, Lot, LotSource
from tollbooth.domain.money import format_credits

__all__ = ["EVENT_MODELS", "SCHEMA_VERSION", "event_schema", "lot_event", "schema_files"]


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


def hold_event(kind: str, account_id: str, entry: LedgerEntry, hold: Hold, now: int) -> dict[str, Any]:
    """A hold.* event for a committed entry of ``hold`` (its details say what moved)."""
    details = entry.details
    fields: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": f"{kind}:{account_id}:{hold.hold_id}",
        "type": kind,
        "account_id": account_id,
        "hold_id": hold.hold_id,
        "credits": format_credits(hold.credits),
        "feature": hold.feature,
        "entry_id": entry.entry_id,
        "occurred_at": clock.to_iso(now),
    }
    if kind == "hold.placed":
        fields["expires_at"] = clock.to_iso(hold.expires_at)
    if kind == "hold.captured":
        for name in ("captured", "from_hold", "unpaid"):
            fields[name] = format_credits(details[name])
    if kind != "hold.placed":
        fields["released"] = format_credits(details["released"])
        fields["written_off"] = format_credits(details["written_off"])
    return EVENT_MODELS[kind].model_validate(fields).model_dump(mode="json")


def reversed_event(account_id: str, entry: LedgerEntry, now: int) -> dict[str, Any]:
    """``charge.reversed`` for a committed ``reversal`` entry."""
    details = entry.details
    event = ChargeReversed(
        schema_version=SCHEMA_VERSION,
        event_id=f"charge.reversed:{account_id}:{entry.entry_id}",
        type="charge.reversed",
        account_id=account_id,
        charge_entry_id=details["charge_entry_id"],
        usage_event_id=details["event_id"],
        credits=format_credits(entry.amount),
        reversed_total=format_credits(details["reversed_total"]),
        charged=format_credits(details["charged"]),
        arrears_reduced=format_credits(details["arrears_reduced"]),
        written_off=format_credits(details["written_off"]),
        reason=details["reason"],
        actor=details["actor"],
        entry_id=entry.entry_id,
        occurred_at=clock.to_iso(now),
    )
    return event.model_dump(mode="json")


def claimed_events(
    account_id: str, entry: LedgerEntry, kind: str, lots: list[tuple[str, LotSource, int]], now: int
) -> list[dict[str, Any]]:
    """The events of an entry a claim (``domain.claims``) made of credits that came back:
    ``credits.clawed_back`` for a refund's (nothing unrecovered), ``lot.voided`` per lot for
    a void's. ``lots``: (lot_id, source, credits) taken."""
    common: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "account_id": account_id, "entry_id": entry.entry_id}
    occurred = clock.to_iso(now)
    if kind != "void":
        clawed = CreditsClawedBack(
            **common,
            event_id=f"credits.clawed_back:{account_id}:{entry.entry_id}",
            type="credits.clawed_back",
            clawed_back=format_credits(sum(credits for _, _, credits in lots)),
            unrecovered=format_credits(0),
            refund_policy="debt" if kind == "debt" else "absorb",
            occurred_at=occurred,
        )
        return [clawed.model_dump(mode="json")]
    return [
        LotVoided(
            **common,
            event_id=f"lot.voided:{account_id}:{lot_id}:{entry.entry_id}",
            type="lot.voided",
            lot_id=lot_id,
            source=source,
            amount=format_credits(credits),
            reason="credits came back to the voided lot",
            actor="tollbooth",
            occurred_at=occurred,
        ).model_dump(mode="json")
        for lot_id, source, credits in lots
    ]


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


def dispute_event(account_id: str, entry: LedgerEntry, now: int) -> dict[str, Any]:
    """``dispute.<status>`` for a committed ``dispute`` entry: one per payment and status."""
    details = entry.details
    status = details["status"]
    common: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": f"dispute.{status}:{account_id}:{details['payment_reference']}",
        "type": f"dispute.{status}",
        "account_id": account_id,
        "payment_reference": details["payment_reference"],
        "reason": details["reason"],
        "actor": details["actor"],
        "entry_id": entry.entry_id,
        "occurred_at": clock.to_iso(now),
    }
    if status == "opened":
        common["frozen"] = format_credits(details["frozen_credits"])
    elif status == "won":
        common["unfrozen"] = format_credits(details["unfrozen_credits"])
    else:
        common |= {key: format_credits(details[key]) for key in ("clawed_back", "unrecovered")}
        common |= {"amount_minor": details.get("amount_minor", 0), "currency": details.get("currency")}
    event = EVENT_MODELS[f"dispute.{status}"].model_validate(common)
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
