"""The catalog: what a credit buys and what a package costs, as versioned files.

``versions/<version>.toml`` beside this package are the files the pricing team edits:
one file per catalog version, each with the instant it takes effect. A new version
prices requests from its ``effective_from`` on; older versions stay loadable, because
every ledger entry records the version it was charged at.

``models`` holds the validated shapes, ``checks`` the rules across sections of a file,
``history`` the reading of version files into a history. This module re-exports them.
"""

from __future__ import annotations

from tollbooth.domain.catalog.checks import cross_reference_problems
from tollbooth.domain.catalog.history import (
    CATALOG_DIR,
    CatalogError,
    CatalogHistory,
    load_history,
    parse_catalog,
    parse_history,
    read_history,
)
from tollbooth.domain.catalog.models import (
    IDENTIFIER_PATTERN,
    LICENCE_DIMENSION,
    Campaign,
    Catalog,
    Dimension,
    ExactDecimal,
    Expiry,
    ExpiryPolicy,
    Feature,
    Identifier,
    Instant,
    LotTerms,
    Millicredits,
    Package,
    Plan,
    discount,
    price_per_credit,
)

__all__ = [
    "CATALOG_DIR",
    "IDENTIFIER_PATTERN",
    "LICENCE_DIMENSION",
    "Campaign",
    "Catalog",
    "CatalogError",
    "CatalogHistory",
    "Dimension",
    "ExactDecimal",
    "Expiry",
    "ExpiryPolicy",
    "Feature",
    "Identifier",
    "Instant",
    "LotTerms",
    "Millicredits",
    "Package",
    "Plan",
    "cross_reference_problems",
    "discount",
    "load_history",
    "parse_catalog",
    "parse_history",
    "price_per_credit",
    "read_history",
]
