"""The catalog: what a credit buys and what a package costs, as a versioned file.

``catalog.toml`` beside this module is the file the pricing team edits. It is read
once per process, validated with pydantic, and every debit records its version.
TOML decimals are parsed as ``Decimal`` (never float), so ``1.5`` means exactly 1.5.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from tollbooth.money import parse_credits

DEFAULT_CATALOG_PATH = Path(__file__).with_name("catalog.toml")

Millicredits = Annotated[int, BeforeValidator(parse_credits)]
_IDENTIFIER = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
_EXPIRY_RE = re.compile(r"^(never|([1-9][0-9]{0,3}) (days|months))$")


def _exact_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValueError("must be a decimal number such as 1.5")
    return Decimal(value)


ExactDecimal = Annotated[Decimal, BeforeValidator(_exact_decimal)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpiryPolicy(_Strict):
    """When a granted lot stops being spendable, counted from the moment it is granted."""

    kind: Literal["never", "days", "months"]
    count: int = 0

    @classmethod
    def parse(cls, text: str) -> ExpiryPolicy:
        match = _EXPIRY_RE.match(text)
        if not match:
            raise ValueError('expiry must be "never", "N days" or "N months"')
        if match.group(1) == "never":
            return cls(kind="never")
        return cls(kind=match.group(3), count=int(match.group(2)))  # type: ignore[arg-type]

    def __str__(self) -> str:
        return "never" if self.kind == "never" else f"{self.count} {self.kind}"


def _expiry(value: object) -> object:
    return ExpiryPolicy.parse(value) if isinstance(value, str) else value


Expiry = Annotated[ExpiryPolicy, BeforeValidator(_expiry)]


class Dimension(_Strict):
    """A request attribute that scales the charge, such as resolution = hd (x2)."""

    default: str
    values: dict[str, ExactDecimal] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _positive(cls, values: dict[str, Decimal]) -> dict[str, Decimal]:
        for name, multiplier in values.items():
            if multiplier <= 0:
                raise ValueError(f"multiplier for {name!r} must be greater than 0")
        return values

    @model_validator(mode="after")
    def _default_is_a_value(self) -> Dimension:
        if self.default not in self.values:
            raise ValueError(f"default {self.default!r} is not one of {sorted(self.values)}")
        return self


class Feature(_Strict):
    """A billable action. ``credits`` are charged per ``per`` units of ``unit``."""

    description: str = ""
    unit: str
    credits: Millicredits
    per: int = Field(default=1, ge=1)
    # The charge for one request rounds up to a multiple of this (1 = 0.001 credit).
    granularity: Millicredits = Field(default=1)
    minimum: Millicredits = Field(default=0)
    max_quantity: int = Field(default=1_000_000_000, ge=1)
    dimensions: dict[Annotated[str, Field(pattern=_IDENTIFIER)], Dimension] = Field(default_factory=dict)

    @field_validator("granularity")
    @classmethod
    def _granularity_positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("granularity must be at least 0.001")
        return value


class Package(_Strict):
    """A credit package for sale. Bonus credits become a lot of their own."""

    name: str
    price_minor: int = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    credits: Millicredits
    bonus_credits: Millicredits = 0
    expiry: Expiry
    bonus_expiry: Expiry | None = None
    priority: int = Field(default=50, ge=0, le=1000)
    bonus_priority: int = Field(default=20, ge=0, le=1000)

    @field_validator("credits")
    @classmethod
    def _credits_positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("a package must grant more than 0 credits")
        return value


class Catalog(_Strict):
    version: str = Field(min_length=1, max_length=64)
    features: dict[Annotated[str, Field(pattern=_IDENTIFIER)], Feature] = Field(min_length=1)
    packages: dict[Annotated[str, Field(pattern=_IDENTIFIER)], Package] = Field(default_factory=dict)
    # The package others' discounts are measured against (usually the smallest).
    base_package: str | None = None

    @model_validator(mode="after")
    def _base_package_exists(self) -> Catalog:
        if self.base_package is not None and self.base_package not in self.packages:
            raise ValueError(f"base_package {self.base_package!r} is not one of {sorted(self.packages)}")
        return self


def price_per_credit(package: Package) -> Fraction:
    """Minor currency units paid per credit received, bonus included (exact)."""
    return Fraction(package.price_minor * 1000, package.credits + package.bonus_credits)


def discount(package: Package, base: Package) -> Fraction:
    """How much cheaper a credit is in ``package`` than in ``base`` (0.25 = 25 %)."""
    return 1 - price_per_credit(package) / price_per_credit(base)


class CatalogError(ValueError):
    """The catalog file is invalid; ``problems`` lists ``path: message`` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: invalid catalog\n" + "\n".join(problems))
        self.problems = problems


def _problems(error: ValidationError) -> list[str]:
    return [".".join(str(part) for part in item["loc"]) + ": " + item["msg"] for item in error.errors()]


def parse_catalog(text: str, source: str = "<catalog>") -> Catalog:
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(source, [f"toml: {error}"]) from error
    try:
        return Catalog.model_validate(data)
    except ValidationError as error:
        raise CatalogError(source, _problems(error)) from error


@cache
def load_catalog(path: Path = DEFAULT_CATALOG_PATH) -> Catalog:
    return parse_catalog(path.read_text(encoding="utf-8"), str(path))
