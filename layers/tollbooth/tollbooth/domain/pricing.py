"""Pricing: a request (feature, quantity, dimensions) to an exact charge.

All arithmetic is on ``Fraction``; the only rounding is the explicit ceiling to
the feature's granularity, then the feature's minimum charge.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from tollbooth.domain.catalog import LICENCE_DIMENSION, Catalog, Feature
from tollbooth.domain.errors import InvalidDimension, InvalidQuantity, UnknownFeature


@dataclass(frozen=True)
class Multiplier:
    dimension: str
    value: str
    factor: Fraction


@dataclass(frozen=True)
class Charge:
    feature: str
    quantity: int
    dimensions: dict[str, str]  # every dimension of the feature, defaults filled in
    amount: int  # millicredits: what is debited
    catalog_version: str
    licence: str = ""  # the licence the request is used under; lots may be restricted to licences
    locked: bool = False  # the feature needs credits that unlock it
    # How the amount came about, for quotes and audits (millicredits, exact):
    base: Fraction = Fraction(0)  # quantity x credits / per
    multipliers: tuple[Multiplier, ...] = ()
    exact: Fraction = Fraction(0)  # base x every multiplier
    rounded: int = 0  # exact, rounded up to the granularity
    granularity: int = 1
    minimum: int = 0


def resolve_dimensions(feature_id: str, feature: Feature, requested: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(requested) - set(feature.dimensions))
    if unknown:
        allowed = sorted(feature.dimensions) or "none"
        raise InvalidDimension(
            f"feature {feature_id!r} has no dimension {unknown[0]!r}; allowed dimensions: {allowed}",
            allowed=sorted(feature.dimensions),
        )
    resolved = {}
    for name, dimension in feature.dimensions.items():
        value = requested.get(name, dimension.default)
        if value not in dimension.values:
            raise InvalidDimension(
                f"dimension {name!r} has no value {value!r}; allowed values: {sorted(dimension.values)}",
                allowed=sorted(dimension.values),
            )
        resolved[name] = value
    return resolved


def ceil_to(amount: Fraction, granularity: int) -> int:
    steps = -(-amount.numerator // (amount.denominator * granularity))
    return steps * granularity


def price(catalog: Catalog, feature_id: str, quantity: int, dimensions: dict[str, str] | None = None) -> Charge:
    feature = catalog.features.get(feature_id)
    if feature is None:
        raise UnknownFeature(
            f"unknown feature {feature_id!r}; known features: {sorted(catalog.features)}",
            allowed=sorted(catalog.features),
        )
    if not 1 <= quantity <= feature.max_quantity:
        raise InvalidQuantity(f"quantity must be between 1 and {feature.max_quantity} for {feature_id!r}")
    resolved = resolve_dimensions(feature_id, feature, dimensions or {})
    base = Fraction(quantity * feature.credits, feature.per)
    multipliers = tuple(
        Multiplier(name, value, Fraction(feature.dimensions[name].values[value])) for name, value in resolved.items()
    )
    exact = base
    for multiplier in multipliers:
        exact *= multiplier.factor
    rounded = ceil_to(exact, feature.granularity)
    return Charge(
        feature=feature_id,
        quantity=quantity,
        dimensions=resolved,
        amount=max(rounded, feature.minimum),
        catalog_version=catalog.version,
        licence=resolved.get(LICENCE_DIMENSION, catalog.default_licence),
        locked=feature.locked,
        base=base,
        multipliers=multipliers,
        exact=exact,
        rounded=rounded,
        granularity=feature.granularity,
        minimum=feature.minimum,
    )
