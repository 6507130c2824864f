"""Rules that span sections of a catalog file, each reported with the path to fix."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

from tollbooth.domain.catalog.models import LICENCE_DIMENSION, Campaign, Catalog, LotTerms


def cross_reference_problems(catalog: Catalog) -> Iterator[str]:
    """Every cross-reference problem, section by section, in file order."""
    yield from _base_and_licence_problems(catalog)
    yield from _feature_problems(catalog)
    yield from _grantor_problems(catalog)
    yield from _campaign_package_problems(catalog)
    yield from _campaign_overlap_problems(catalog)


def _base_and_licence_problems(catalog: Catalog) -> Iterator[str]:
    if catalog.base_package is not None and catalog.base_package not in catalog.packages:
        yield f"base_package: {catalog.base_package!r} is not one of {sorted(catalog.packages)}"
    if catalog.default_licence not in catalog.licences:
        yield f"default_licence: {catalog.default_licence!r} is not one of {list(catalog.licences)}"


def _feature_problems(catalog: Catalog) -> Iterator[str]:
    for feature_id, feature in catalog.features.items():
        licence = feature.dimensions.get(LICENCE_DIMENSION)
        for value in sorted(set(licence.values) - set(catalog.licences)) if licence else []:
            yield f"features.{feature_id}.dimensions.{LICENCE_DIMENSION}.values.{value}: not one of licences"
        if feature.locked and not catalog.unlocked_by(feature_id):
            yield f"features.{feature_id}.locked: no package or plan unlocks it"


def _grantor_problems(catalog: Catalog) -> Iterator[str]:
    """Packages, then plans: the licences, features and unlocks their credits name."""
    grantors: list[tuple[str, LotTerms]] = [(f"packages.{k}", v) for k, v in catalog.packages.items()]
    grantors += [(f"plans.{k}", v) for k, v in catalog.plans.items()]
    for path, terms in grantors:
        yield from _terms_problems(catalog, path, terms)


def _terms_problems(catalog: Catalog, path: str, terms: LotTerms) -> Iterator[str]:
    for licence_name in sorted(set(terms.licences or ()) - set(catalog.licences)):
        yield f"{path}.licences: {licence_name!r} is not one of {list(catalog.licences)}"
    for field, names in (("features", terms.features or ()), ("unlocks", terms.unlocks)):
        for name in sorted(set(names) - set(catalog.features)):
            yield f"{path}.{field}: {name!r} is not one of {sorted(catalog.features)}"
    for name in terms.unlocks:
        if name in catalog.features and not catalog.features[name].locked:
            yield f"{path}.unlocks: {name!r} is not a locked feature"


def _campaign_package_problems(catalog: Catalog) -> Iterator[str]:
    for campaign_id, campaign in catalog.campaigns.items():
        for package_id in campaign.packages:
            if package_id not in catalog.packages:
                yield f"campaigns.{campaign_id}.packages: {package_id!r} is not one of {sorted(catalog.packages)}"


def _campaign_overlap_problems(catalog: Catalog) -> Iterator[str]:
    """Campaigns for the same package must not overlap (one bonus per purchase)."""
    by_package: dict[str, list[tuple[str, Campaign]]] = {}
    for campaign_id, campaign in catalog.campaigns.items():
        for package_id in campaign.packages:
            by_package.setdefault(package_id, []).append((campaign_id, campaign))
    for package_id, campaigns in by_package.items():
        ordered = sorted(campaigns, key=lambda item: item[1].starts_at)
        for (first_id, first), (second_id, second) in pairwise(ordered):
            if second.starts_at < first.ends_at:
                yield f"campaigns.{second_id}: overlaps campaign {first_id!r} for package {package_id!r}"
