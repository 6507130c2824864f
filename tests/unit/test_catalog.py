import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from tollbooth.domain import clock
from tollbooth.domain.catalog import (
    CATALOG_DIR,
    CatalogError,
    ExpiryPolicy,
    discount,
    load_history,
    parse_catalog,
    parse_history,
    price_per_credit,
)
from tollbooth.domain.clock import now_ms
from tollbooth.domain.errors import CatalogVersionNotFound, NoCatalogInForce
from tollbooth.domain.money import format_rounded

MINIMAL = """
version = "t1"
effective_from = 2026-01-01T00:00:00Z
[features.words]
unit = "word"
credits = 1
per = 500
"""


def test_the_repository_catalog_is_valid_and_versioned() -> None:
    catalog = load_history(CATALOG_DIR).in_force(now_ms())
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
    assert "base_package: 'gold' is not one of []" in failure.value.problems


def test_price_per_credit_counts_bonus_and_discount_is_against_the_base() -> None:
    catalog = load_history().in_force(now_ms())
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
        [sys.executable, "-m", "tollbooth.domain.catalog", str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "features.words.dimensions.res" in result.stderr and "'8k'" in result.stderr
    good = subprocess.run(
        [sys.executable, "-m", "tollbooth.domain.catalog"], capture_output=True, text=True, check=False
    )
    assert good.returncode == 0 and "ok, version" in good.stdout


PACKAGE = 'name = "P"\nprice_minor = 100\ncurrency = "USD"\ncredits = 10\nexpiry = "never"\n'
PLAN = 'name = "Pro"\nperiod = "monthly"\nprice_minor = 1\ncurrency = "USD"\nallowance = 5\n'
CAMPAIGN = 'name = "C"\nbonus_percent = 10\npackages = ["p"]\n'


@pytest.mark.parametrize(
    ("addition", "expected_problem"),
    [
        (f"[packages.p]\n{PACKAGE}licences = ['pro']\n", "packages.p.licences: 'pro' is not one of ['personal']"),
        (f"[packages.p]\n{PACKAGE}features = ['nope']\n", "packages.p.features: 'nope' is not one of ['words']"),
        (f"[packages.p]\n{PACKAGE}unlocks = ['words']\n", "packages.p.unlocks: 'words' is not a locked feature"),
        ("[features.vip]\nunit = 'x'\ncredits = 1\nlocked = true\n", "features.vip.locked: no package or plan"),
        (f"[plans.pro]\n{PLAN}".replace('"monthly"', '"weekly"'), "plans.pro.period"),
        (f"[plans.pro]\n{PLAN}".replace("allowance = 5", "allowance = 0"), "plans.pro.allowance"),
        (f"[plans.pro]\n{PLAN}rollover_cap = -1\n", "plans.pro.rollover_cap"),
        (
            f"[packages.p]\n{PACKAGE}[campaigns.c]\n{CAMPAIGN}"
            "starts_at = 2026-12-02T00:00:00Z\nends_at = 2026-12-01T00:00:00Z\n",
            "campaigns.c: Value error, ends_at must be after starts_at",
        ),
        (
            f"[packages.p]\n{PACKAGE}[campaigns.c]\n{CAMPAIGN}".replace("bonus_percent = 10", "bonus_percent = 0")
            + "starts_at = 2026-12-01T00:00:00Z\nends_at = 2026-12-02T00:00:00Z\n",
            "campaigns.c.bonus_percent",
        ),
        (
            f"[campaigns.c]\n{CAMPAIGN}starts_at = 2026-12-01T00:00:00Z\nends_at = 2026-12-02T00:00:00Z\n",
            "campaigns.c.packages: 'p' is not one of []",
        ),
        (
            f"[packages.p]\n{PACKAGE}"
            f"[campaigns.a]\n{CAMPAIGN}starts_at = 2026-12-01T00:00:00Z\nends_at = 2026-12-10T00:00:00Z\n"
            f"[campaigns.b]\n{CAMPAIGN}starts_at = 2026-12-09T00:00:00Z\nends_at = 2026-12-20T00:00:00Z\n",
            "campaigns.b: overlaps campaign 'a' for package 'p'",
        ),
        (
            "[features.words.dimensions.licence]\ndefault = 'personal'\nvalues = { personal = 1, resale = 3 }\n",
            "features.words.dimensions.licence.values.resale: not one of licences",
        ),
        ('default_licence = "commercial"\n', "default_licence: 'commercial' is not one of ['personal']"),
        ("", None),
    ],
)
def test_rules_across_sections_name_the_path_to_fix(addition: str, expected_problem: str | None) -> None:
    # Given a catalog that breaks one rule spanning sections (or none)
    text = MINIMAL.replace(
        "effective_from = 2026-01-01T00:00:00Z\n", "effective_from = 2026-01-01T00:00:00Z\n" + addition
    )
    if addition.startswith("default_licence"):
        text = addition + MINIMAL
    # When it is parsed, Then the problem names its path (and a valid file parses)
    if expected_problem is None:
        assert parse_catalog(text).version == "t1"
        return
    with pytest.raises(CatalogError) as failure:
        parse_catalog(text)
    assert any(expected_problem in problem for problem in failure.value.problems), failure.value.problems


def version_file(version: str, effective_from: str, credits: str = "1") -> str:
    header = f'version = "{version}"\neffective_from = {effective_from}\n'
    return header + f'[features.words]\nunit = "word"\ncredits = {credits}\n'


def test_the_version_in_force_changes_at_the_exact_instant() -> None:
    # Given two versions, the second taking effect at 2027-01-01T00:00:00Z
    history = parse_history(
        {
            "v1.toml": version_file("v1", "2026-01-01T00:00:00Z", "1"),
            "v2.toml": version_file("v2", "2027-01-01T00:00:00Z", "2"),
        }
    )
    switch = clock.from_datetime(datetime(2027, 1, 1, tzinfo=UTC))
    # Then a millisecond before it v1 prices, and at the instant v2 does
    assert history.in_force(switch - 1).version == "v1"
    assert history.in_force(switch).version == "v2"
    # And the old version stays loadable for audits
    assert history.get("v1").features["words"].credits == 1000
    with pytest.raises(CatalogVersionNotFound) as failure:
        history.get("v0")
    assert failure.value.details["allowed"] == ["v1", "v2"]
    with pytest.raises(NoCatalogInForce):
        history.in_force(clock.from_datetime(datetime(2025, 12, 31, tzinfo=UTC)))


@pytest.mark.parametrize(
    ("files", "expected_problem"),
    [
        ({"v1.toml": version_file("v2", "2026-01-01T00:00:00Z")}, "v1.toml: version: 'v2' must match the file name"),
        (
            {
                "v1.toml": version_file("v1", "2026-01-01T00:00:00Z"),
                "v2.toml": version_file("v2", "2026-01-01T00:00:00Z"),
            },
            "v2.toml: effective_from: the same instant as version 'v1'",
        ),
        ({"v1.toml": 'version = "v1"\n[features.words]\nunit = "w"\ncredits = 1\n'}, "v1.toml: effective_from"),
        ({"v1.toml": version_file("v1", "2026-01-01T00:00:00")}, "v1.toml: effective_from"),
        ({}, "no catalog version files"),
    ],
)
def test_a_history_reports_problems_by_file_and_path(files: dict[str, str], expected_problem: str) -> None:
    with pytest.raises(CatalogError) as failure:
        parse_history(files)
    assert any(expected_problem in problem for problem in failure.value.problems), failure.value.problems


def test_catalog_check_validates_a_directory_of_versions(tmp_path: Path) -> None:
    (tmp_path / "v1.toml").write_text(version_file("v1", "2026-01-01T00:00:00Z"))
    (tmp_path / "v2.toml").write_text(version_file("v2", "2026-01-01T00:00:00Z"))
    result = subprocess.run(
        [sys.executable, "-m", "tollbooth.domain.catalog", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1 and "the same instant as version 'v1'" in result.stderr


def test_a_campaign_bonus_rounds_down_to_a_millicredit_and_its_window_is_half_open() -> None:
    catalog = parse_catalog(
        MINIMAL
        + PACKAGE.join(["[packages.p]\n", ""]).replace("credits = 10", "credits = 10.001")
        + f"[campaigns.c]\n{CAMPAIGN}".replace("bonus_percent = 10", "bonus_percent = 12.5")
        + "starts_at = 2026-12-01T00:00:00Z\nends_at = 2026-12-08T00:00:00Z\n"
    )
    campaign = catalog.campaigns["c"]
    assert campaign.bonus_for(catalog.packages["p"]) == 1250  # 12.5 % of 10.001 = 1.250125
    start = clock.from_datetime(datetime(2026, 12, 1, tzinfo=UTC))
    end = clock.from_datetime(datetime(2026, 12, 8, tzinfo=UTC))
    assert [catalog.campaign_for("p", at) is not None for at in (start - 1, start, end - 1, end)] == [
        False,
        True,
        True,
        False,
    ]
