import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from tollbooth.catalog import (
    DEFAULT_CATALOG_PATH,
    CatalogError,
    ExpiryPolicy,
    discount,
    load_catalog,
    parse_catalog,
    price_per_credit,
)
from tollbooth.money import format_rounded

MINIMAL = """
version = "t1"
[features.words]
unit = "word"
credits = 1
per = 500
"""


def test_the_repository_catalog_is_valid_and_versioned() -> None:
    catalog = load_catalog(DEFAULT_CATALOG_PATH)
    assert catalog.version
    assert {"starter", "standard", "premium"} <= set(catalog.packages)
    assert catalog.packages["standard"].bonus_credits > 0


def test_toml_decimals_are_read_exactly_never_as_float() -> None:
    catalog = parse_catalog(MINIMAL + '[features.words.dimensions.tier]\ndefault = "a"\nvalues = { a = 1, b = 0.1 }\n')
    multiplier = catalog.features["words"].dimensions["tier"].values["b"]
    assert isinstance(multiplier, Decimal) and multiplier == Decimal("0.1")


@pytest.mark.parametrize(
    ("addition", "expected_problem"),
    [
        ('[features.words.dimensions.res]\ndefault = "8k"\nvalues = { hd = 2 }\n', "features.words.dimensions.res"),
        ('[features.words.dimensions.res]\ndefault = "hd"\nvalues = { hd = 0 }\n', "multiplier for 'hd'"),
        (
            '[packages.p]\nname = "P"\nprice_minor = 1\ncurrency = "usd"\ncredits = 1\nexpiry = "never"\n',
            "packages.p.currency",
        ),
        (
            '[packages.p]\nname = "P"\nprice_minor = 1\ncurrency = "USD"\ncredits = 1\nexpiry = "soon"\n',
            "packages.p.expiry",
        ),
        (
            '[packages.p]\nname = "P"\nprice_minor = 1\ncurrency = "USD"\ncredits = 0\nexpiry = "never"\n',
            "packages.p.credits",
        ),
        (
            '[packages.p]\nname = "P"\nprice_minor = 1\ncurrency = "USD"\ncredits = 1.0001\nexpiry = "never"\n',
            "packages.p.credits",
        ),
        ("[features.other]\nunit = 'x'\ncredits = 1\nsurprise = 1\n", "features.other.surprise"),
        ("[features.other]\nunit = 'x'\ncredits = 1\ngranularity = 0\n", "features.other.granularity"),
    ],
)
def test_every_catalog_error_names_its_path(addition: str, expected_problem: str) -> None:
    with pytest.raises(CatalogError) as failure:
        parse_catalog(MINIMAL + addition)
    assert any(expected_problem in problem for problem in failure.value.problems), failure.value.problems


def test_broken_toml_is_a_catalog_error() -> None:
    with pytest.raises(CatalogError, match="toml"):
        parse_catalog("version = ")


@pytest.mark.parametrize(
    ("text", "kind", "count"), [("never", "never", 0), ("90 days", "days", 90), ("12 months", "months", 12)]
)
def test_expiry_policies_parse(text: str, kind: str, count: int) -> None:
    policy = ExpiryPolicy.parse(text)
    assert (policy.kind, policy.count) == (kind, count)
    assert str(policy) == text


def test_base_package_must_exist() -> None:
    with pytest.raises(CatalogError) as failure:
        parse_catalog('base_package = "gold"\n' + MINIMAL)
    assert any("base_package 'gold'" in problem for problem in failure.value.problems)


def test_price_per_credit_counts_bonus_and_discount_is_against_the_base() -> None:
    catalog = load_catalog()
    starter, standard = catalog.packages["starter"], catalog.packages["standard"]
    assert price_per_credit(starter) == Fraction(999, 1000)
    assert price_per_credit(standard) == Fraction(3999, 5500)
    assert discount(starter, starter) == 0
    assert discount(standard, starter) == 1 - Fraction(3999, 5500) / Fraction(999, 1000)


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [(Fraction(2, 3), 2, "0.67"), (Fraction(1, 8), 2, "0.12"), (Fraction(3, 8), 2, "0.38"), (Fraction(5), 1, "5.0")],
)
def test_display_rounding_is_half_even(value: Fraction, places: int, shown: str) -> None:
    assert format_rounded(value, places) == shown


def test_catalog_check_reports_problems_by_path_and_fails(tmp_path: Path) -> None:
    broken = tmp_path / "catalog.toml"
    broken.write_text(MINIMAL + '[features.words.dimensions.res]\ndefault = "8k"\nvalues = { hd = 2 }\n')
    result = subprocess.run(
        [sys.executable, "-m", "tollbooth.catalog", str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "features.words.dimensions.res" in result.stderr and "'8k'" in result.stderr
    good = subprocess.run([sys.executable, "-m", "tollbooth.catalog"], capture_output=True, text=True, check=False)
    assert good.returncode == 0 and "ok, version" in good.stdout
