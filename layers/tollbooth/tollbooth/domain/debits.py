"""What spending credits produces: a consume's draws from the lots that may pay for it, in
burn-down order, as one mutation. A debit the credits do not cover is refused (402) here;
usage already performed is charged elsewhere (``usage_charges``), into arrears if need be."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollbooth.domain.allocation import allocate, draw_records
from tollbooth.domain.catalog import Catalog
from tollbooth.domain.ledger import Account, Draw, Lot, Mutation, Use, next_entry
from tollbooth.domain.pricing import Charge, price


def consume(catalog: Catalog, feature: str, quantity: int, dimensions: dict[str, str]) -> tuple[Charge, Use]:
    """What a request costs at ``catalog``, and what kind of credits may pay for it."""
    charge = price(catalog, feature, quantity, dimensions)
    return charge, Use(charge.feature, charge.licence, charge.locked, tuple(catalog.unlocked_by(charge.feature)))


def consume_mutation(
    account: Account, charge: Charge, use: Use, now: int, key: str, caller: Mapping[str, str]
) -> Mutation:
    """Debit ``charge`` from the lots that may pay for ``use``, or InsufficientCredits /
    FeatureLocked with what is missing."""
    draws = allocate(account, charge.amount, now, use)
    entry = next_entry(
        account, "consume", -charge.amount, now, key, consume_details(charge, draws, account.lots, caller)
    )
    return Mutation(account, (entry,), draws=draws)


def consume_details(
    charge: Charge, draws: tuple[Draw, ...], lots: tuple[Lot, ...], caller: Mapping[str, str]
) -> dict[str, Any]:
    """What a consume's entry records: the charge, the lots it drew (of ``lots``), and who asked."""
    return {
        "feature": charge.feature,
        "quantity": charge.quantity,
        "dimensions": charge.dimensions,
        "draws": draw_records(draws, lots),
        "catalog_version": charge.catalog_version,
        "caller": dict(caller),
    }
