from decimal import Decimal

import pytest

from tollbooth.domain.money import format_credits, parse_credits


@pytest.mark.parametrize(
    ("given", "millicredits"),
    [(0, 0), (5, 5000), ("5", 5000), ("12.5", 12500), ("0.001", 1), ("1.250", 1250), (Decimal("0.2"), 200)],
)
def test_parse_credits_is_exact(given: object, millicredits: int) -> None:
    assert parse_credits(given) == millicredits


@pytest.mark.parametrize("given", [0.1, 1.0, True, "1.0001", "-1", "1e3", "", " 1", "01", None, -5, "1.", ".5"])
def test_parse_credits_refuses_floats_and_sloppy_input(given: object) -> None:
    with pytest.raises(ValueError):
        parse_credits(given)


@pytest.mark.parametrize(
    ("millicredits", "shown"),
    [(0, "0.000"), (1, "0.001"), (12500, "12.500"), (-2400, "-2.400"), (10**9, "1000000.000")],
)
def test_format_credits_shows_three_places(millicredits: int, shown: str) -> None:
    assert format_credits(millicredits) == shown
    assert parse_credits(shown.lstrip("-")) == abs(millicredits)
