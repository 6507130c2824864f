"""Pricing: worked examples from the catalog, and properties that must hold for any request."""

import random
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.engines import worked_examples
from tollbooth.domain.catalog import load_history, parse_catalog
from tollbooth.domain.clock import now_ms
from tollbooth.domain.errors import InvalidDimension, InvalidQuantity, UnknownFeature
from tollbooth.domain.money import format_credits
from tollbooth.domain.pricing import ceil_to, price

CATALOG = load_history().in_force(now_ms())


@pytest.mark.parametrize(("feature", "quantity", "dimensions", "charged"), worked_examples())
def test_worked_examples_in_the_pricing_doc(
    feature: str, quantity: int, dimensions: dict[str, str], charged: str
) -> None:
    charge = price(CATALOG, feature, quantity, dimensions)
    assert format_credits(charge.amount) == charged
    assert charge.catalog_version == CATALOG.version


def test_the_doc_has_an_example_of_every_multiplier_kind_and_edge() -> None:
    examples = worked_examples()
    named = {name for _, _, dims, _ in examples for name in dims}
    assert {"tier", "resolution", "style", "licence"} <= named
    assert any(dims == {"resolution": "4k", "licence": "commercial"} for _, _, dims, _ in examples)


def test_a_charge_explains_itself() -> None:
    charge = price(CATALOG, "text_generation", 1201, {"tier": "premium"})
    assert charge.base == Fraction(1201 * 1000, 500)
    assert [(m.dimension, m.value, m.factor) for m in charge.multipliers] == [("tier", "premium", Fraction(3, 2))]
    assert charge.exact == charge.base * Fraction(3, 2)
    assert charge.rounded == charge.amount == 3610  # 3.603 rounds up to 3.61


def test_defaults_fill_every_dimension() -> None:
    charge = price(CATALOG, "image_generation", 1, {"resolution": "hd"})
    assert charge.dimensions == {"resolution": "hd", "style": "basic", "licence": "personal"}


def test_unknown_feature_lists_known_features() -> None:
    with pytest.raises(UnknownFeature) as failure:
        price(CATALOG, "telepathy", 1)
    assert failure.value.details["allowed"] == sorted(CATALOG.features)


@pytest.mark.parametrize(
    ("dimensions", "allowed"),
    [({"colour": "red"}, ["licence", "resolution", "style"]), ({"resolution": "8k"}, ["4k", "hd", "standard"])],
)
def test_unknown_dimension_or_value_lists_what_is_allowed(dimensions: dict[str, str], allowed: list[str]) -> None:
    with pytest.raises(InvalidDimension) as failure:
        price(CATALOG, "image_generation", 1, dimensions)
    assert failure.value.details["allowed"] == allowed


@pytest.mark.parametrize("quantity", [0, -1, 101])
def test_quantity_outside_the_features_range_is_refused(quantity: int) -> None:
    with pytest.raises(InvalidQuantity):
        price(CATALOG, "image_generation", quantity)


@pytest.mark.parametrize(
    ("amount", "granularity", "rounded"),
    [(Fraction(0), 10, 0), (Fraction(1, 3), 1, 1), (Fraction(20), 10, 20), (Fraction(21), 10, 30)],
)
def test_ceil_to_rounds_up_only_when_needed(amount: Fraction, granularity: int, rounded: int) -> None:
    assert ceil_to(amount, granularity) == rounded


features = st.sampled_from(sorted(CATALOG.features))


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, int, dict[str, str]]:
    feature_id = draw(features)
    feature = CATALOG.features[feature_id]
    quantity = draw(st.integers(min_value=1, max_value=feature.max_quantity))
    dims = {
        name: draw(st.sampled_from(sorted(d.values))) for name, d in feature.dimensions.items() if draw(st.booleans())
    }
    return feature_id, quantity, dims


@given(requests())
def test_a_price_is_a_positive_integer_of_millicredits(request: tuple[str, int, dict[str, str]]) -> None:
    charge = price(CATALOG, *request)
    assert type(charge.amount) is int
    assert charge.amount > 0
    assert (
        charge.amount % CATALOG.features[request[0]].granularity == 0
        or charge.amount == CATALOG.features[request[0]].minimum
    )


@given(requests(), st.integers(min_value=1, max_value=1000))
def test_a_price_is_monotone_in_quantity(request: tuple[str, int, dict[str, str]], extra: int) -> None:
    feature_id, quantity, dims = request
    more = min(quantity + extra, CATALOG.features[feature_id].max_quantity)
    assert price(CATALOG, feature_id, more, dims).amount >= price(CATALOG, feature_id, quantity, dims).amount


@given(requests())
def test_the_order_of_dimensions_does_not_matter(request: tuple[str, int, dict[str, str]]) -> None:
    feature_id, quantity, dims = request
    reversed_dims = dict(reversed(list(dims.items())))
    assert price(CATALOG, feature_id, quantity, dims) == price(CATALOG, feature_id, quantity, reversed_dims)


multipliers = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("20"), places=3)


@given(
    st.lists(st.tuples(multipliers, multipliers), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=10_000),
    st.randoms(use_true_random=False),
)
def test_multipliers_commute_whatever_order_the_catalog_declares_them(
    factors: list[tuple[Decimal, Decimal]], quantity: int, shuffler: random.Random
) -> None:
    # Given one feature whose dimensions are declared in two different orders
    tables = [
        f'[features.f.dimensions.d{i}]\ndefault = "a"\nvalues = {{ a = {a}, b = {b} }}\n'
        for i, (a, b) in enumerate(factors)
    ]
    shuffled = tables[:]
    shuffler.shuffle(shuffled)
    header = 'version = "t"\neffective_from = 2026-01-01T00:00:00Z\n[features.f]\nunit = "u"\ncredits = 0.7\nper = 3\n'
    first, second = parse_catalog(header + "".join(tables)), parse_catalog(header + "".join(shuffled))
    choice = {f"d{i}": "b" for i in range(0, len(factors), 2)}
    # Then the charge, exact and rounded, is the same
    one, other = price(first, "f", quantity, choice), price(second, "f", quantity, choice)
    assert (one.exact, one.amount) == (other.exact, other.amount)
    expected = Fraction(quantity * 700, 3)
    for i, (a, b) in enumerate(factors):
        expected *= Fraction(b if f"d{i}" in choice else a)
    assert one.exact == expected
