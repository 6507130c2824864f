"""How a lot is stored, spelled once for the DynamoDB adapter and its in-memory twin.

Each field of the domain's ``Lot`` is an attribute of the same name, except that
``licences``, ``features`` and ``unlocks`` are string sets (DynamoDB has neither empty sets
nor order: an empty one is left out, and they read back sorted), the flags
``priority_processing``, ``warned`` and ``expiry_grace`` are left out while false or 0,
and ``None`` is no attribute at all. The account item keeps a short summary of each live
expiring lot for the sweep (``SUMMARY``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from tollbooth.domain.ledger import Lot

FIELDS = tuple(field.name for field in fields(Lot))
SETS = ("licences", "features", "unlocks")
FLAGS = ("priority_processing", "warned", "expiry_grace")
NUMBERS = ("granted", "remaining", "created_at", "expires_at", "priority", "price_minor", "expiry_grace")

# The summary of a lot on the account item, under short names: what the sweep needs to
# write it off or warn of it, reading one item per account.
SUMMARY = {
    "id": "lot_id",
    "src": "source",
    "g": "granted",
    "r": "remaining",
    "c": "created_at",
    "e": "expires_at",
    "pr": "priority",
    "p": "price_minor",
    "cur": "currency",
    "pkg": "package_id",
    "plan": "plan_id",
    "w": "warned",
    "gr": "expiry_grace",
}


def lot_attributes(lot: Lot) -> dict[str, Any]:
    """The lot's stored attributes; None where the item has no attribute."""
    stored: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(lot, name)
        if name in SETS:
            value = set(value) if value else None
        elif name in FLAGS:
            value = value or None
        stored[name] = value
    return stored


def lot_from_attributes(stored: Mapping[str, Any]) -> Lot:
    values: dict[str, Any] = {}
    for name in FIELDS:
        value = stored.get(name)
        if name in SETS and value is not None:
            value = tuple(sorted(value))
        elif name in NUMBERS and value is not None:
            value = int(value)
        values[name] = value
    values["unlocks"] = values["unlocks"] or ()
    values["priority_processing"] = bool(values["priority_processing"])
    values["warned"] = bool(values["warned"])
    values["expiry_grace"] = values["expiry_grace"] or 0
    return Lot(**values)


def lot_summary(lot: Lot) -> dict[str, Any]:
    return {short: getattr(lot, name) for short, name in SUMMARY.items()}


def lot_from_summary(summary: Mapping[str, Any]) -> Lot:
    return Lot(**{name: summary[short] for short, name in SUMMARY.items()})
