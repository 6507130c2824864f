"""Exact credit amounts.

Credits are held as integers of millicredits (1 credit = 1,000 millicredits)
everywhere: catalog, ledger, DynamoDB and the API's internals. The API shows
them as decimal strings with three places ("12.500"), because a JSON number is a
float to most clients.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

MILLICREDITS_PER_CREDIT = 1000
# Upper bound of any single amount: keeps totals far inside DynamoDB's 38 digits.
MAX_MILLICREDITS = 10**18

_DECIMAL_RE = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,3})?")


def parse_credits(value: object) -> int:
    """Turn a client or catalog amount into millicredits, exactly.

    Accepts an int, a Decimal or a decimal string with at most three places.
    A float is refused: it may already have lost the amount the sender meant.
    """
    if isinstance(value, bool):
        raise ValueError("credits must be a decimal string or an integer")
    if isinstance(value, int):
        if value < 0 or value * MILLICREDITS_PER_CREDIT > MAX_MILLICREDITS:
            raise ValueError("credits out of range")
        return value * MILLICREDITS_PER_CREDIT
    if isinstance(value, Decimal):
        value = format(value, "f")
    if not isinstance(value, str):
        raise ValueError('credits must be a decimal string such as "12.5" or an integer')
    if not _DECIMAL_RE.fullmatch(value):
        raise ValueError("credits must be a non-negative decimal with at most 3 decimal places")
    milli = Fraction(Decimal(value)) * MILLICREDITS_PER_CREDIT
    if milli.denominator != 1 or milli > MAX_MILLICREDITS:  # pragma: no cover - regex bounds it
        raise ValueError("credits out of range")
    return int(milli)


def format_credits(millicredits: int) -> str:
    """Show millicredits as a decimal string with exactly three places."""
    sign = "-" if millicredits < 0 else ""
    whole, milli = divmod(abs(millicredits), MILLICREDITS_PER_CREDIT)
    return f"{sign}{whole}.{milli:03d}"


def format_fraction(value: Fraction) -> str:
    """An exact rational: a decimal when it has a short one, else "n/d"."""
    for places in range(10):
        scaled = value * 10**places
        if scaled.denominator == 1:
            whole, fraction = divmod(abs(scaled.numerator), 10**places)
            sign = "-" if value < 0 else ""
            return f"{sign}{whole}" + (f".{fraction:0{places}d}" if places else "")
    return f"{value.numerator}/{value.denominator}"


def format_exact(millicredits: Fraction) -> str:
    """An exact, possibly fractional, amount of millicredits shown in credits."""
    return format_fraction(millicredits / MILLICREDITS_PER_CREDIT)


def format_rounded(value: Fraction, places: int) -> str:
    """A display-only decimal, rounded half-even (never used for amounts that move)."""
    scaled = value * 10**places
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    if rest * 2 > scaled.denominator or (rest * 2 == scaled.denominator and whole % 2):
        whole += 1
    sign = "-" if whole < 0 else ""
    digits = str(abs(whole)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"


def round_half_even(value: Fraction) -> int:
    """An exact value to a whole number of minor units, ties to even (for records, not for charges)."""
    return round(value)
