"""The catalog's shapes: features, packages, plans and campaigns, validated with pydantic.

TOML decimals are parsed as ``Decimal`` (never float), so ``1.5`` means exactly 1.5.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from tollbooth.domain import clock
from tollbooth.domain.money import parse_credits

# The dimension whose value is a request's licence; lots may be restricted by licence.
LICENCE_DIMENSION = "licence"
Millicredits = Annotated[int, BeforeValidator(parse_credits)]
IDENTIFIER_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
_EXPIRY_RE = re.compile(r"^(never|end of billing period|([1-9][0-9]{0,3}) (days|months))$")


def _exact_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValueError("must be a decimal number such as 1.5")
    return Decimal(value)


ExactDecimal = Annotated[Decimal, BeforeValidator(_exact_decimal)]


def _in_range(moment: datetime) -> datetime:
    clock.in_range(moment)
    return moment


Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpiryPolicy(_Strict):
    """When a granted lot stops being spendable, counted from the moment it is granted,
    or at the end of the account's current billing period (its subscription's)."""

    kind: Literal["never", "days", "months", "period_end"]
    count: int = 0

    @classmethod
    def parse(cls, text: str) -> ExpiryPolicy:
        match = _EXPIRY_RE.match(text)
        if not match:
            raise ValueError('expiry must be "never", "N days", "N months" or "end of billing period"')
        if match.group(1) == "never":
            return cls(kind="never")
        if match.group(1) == "end of billing period":
            return cls(kind="period_end")
        return cls(kind=match.group(3), count=int(match.group(2)))  # type: ignore[arg-type]

    def __str__(self) -> str:
        if self.kind == "period_end":
            return "end of billing period"
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
    # A locked feature may be used only while the account holds credits of a package
    # or plan that unlocks it (a premium perk).
    locked: bool = False
    dimensions: dict[Identifier, Dimension] = Field(default_factory=dict)

    @field_validator("granularity")
    @classmethod
    def _granularity_positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("granularity must be at least 0.001")
        return value


class LotTerms(_Strict):
    """What the credits a package or plan grants may pay for, and the perks they carry."""

    # The licences these credits may pay for; absent means every licence.
    licences: tuple[Identifier, ...] | None = Field(default=None, min_length=1)
    # The features these credits may pay for; absent means every feature.
    features: tuple[Identifier, ...] | None = Field(default=None, min_length=1)
    # Perks, visible on the balance while the credits are spendable.
    priority_processing: bool = False
    unlocks: tuple[Identifier, ...] = ()


class Package(LotTerms):
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
    # What a refund does with credits already spent: the catalog's refund_policy if unset.
    refund_policy: Literal["debt", "absorb"] | None = None

    @field_validator("credits")
    @classmethod
    def _credits_positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("a package must grant more than 0 credits")
        return value


class Plan(LotTerms):
    """A subscription plan: an allowance of credits each period, spendable until the period ends."""

    name: str
    period: Literal["monthly", "yearly"]
    price_minor: int = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    allowance: Millicredits
    # Unspent allowance carried into the next period, at most this much (0 = none).
    rollover_cap: Millicredits = 0
    priority: int = Field(default=15, ge=0, le=1000)

    @field_validator("allowance")
    @classmethod
    def _allowance_positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("an allowance must be more than 0 credits")
        return value

    @field_validator("rollover_cap")
    @classmethod
    def _cap_not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("rollover_cap must not be negative")
        return value

    @property
    def months(self) -> int:
        return 1 if self.period == "monthly" else 12


class Campaign(_Strict):
    """A date-bounded bonus: purchases of the named packages in [starts_at, ends_at) get
    ``bonus_percent`` % of the package's credits as an extra bonus lot."""

    name: str
    starts_at: Instant
    ends_at: Instant
    bonus_percent: ExactDecimal
    packages: tuple[Identifier, ...] = Field(min_length=1)
    # Defaults to the package's bonus expiry (or its expiry).
    bonus_expiry: Expiry | None = None

    @field_validator("bonus_percent")
    @classmethod
    def _percent_in_range(cls, value: Decimal) -> Decimal:
        if not 0 < value <= 1000:
            raise ValueError("bonus_percent must be more than 0 and at most 1000")
        return value

    @model_validator(mode="after")
    def _ends_after_start(self) -> Campaign:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def active_at(self, at_ms: int) -> bool:
        return clock.from_datetime(self.starts_at) <= at_ms < clock.from_datetime(self.ends_at)

    def bonus_for(self, package: Package) -> int:
        """The campaign bonus in millicredits, rounded down to a whole millicredit."""
        return int(Fraction(package.credits) * Fraction(self.bonus_percent) / 100)


class Catalog(_Strict):
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    # The instant this version starts pricing requests.
    effective_from: Instant
    features: dict[Identifier, Feature] = Field(min_length=1)
    packages: dict[Identifier, Package] = Field(default_factory=dict)
    plans: dict[Identifier, Plan] = Field(default_factory=dict)
    campaigns: dict[Identifier, Campaign] = Field(default_factory=dict)
    # The package others' discounts are measured against (usually the smallest).
    base_package: str | None = None
    # The licences credits may be restricted to, and the licence of a request whose
    # feature has no licence dimension.
    licences: tuple[Identifier, ...] = Field(default=("personal",), min_length=1)
    default_licence: Identifier = "personal"
    # The most credits one service grant may create (a typo or a compromised role must not
    # mint without bound).
    max_grant: Millicredits = Field(default=1_000_000_000)
    # A refund's credits already spent: "debt" (arrears the next credits pay) or "absorb"
    # (written off as the seller's loss, and reported). Packages may say otherwise.
    refund_policy: Literal["debt", "absorb"] = "debt"
    # Holds (docs/ledger.md): the longest one may last (no upper bound: holds of any
    # duration are a feature), and how many an account may have open at once.
    max_hold_seconds: int = Field(default=7 * 86_400, ge=1)
    max_open_holds: int = Field(default=25, ge=1, le=500)

    def refund_policy_of(self, package_id: str | None) -> Literal["debt", "absorb"]:
        package = self.packages.get(package_id or "")
        return self.refund_policy if package is None or package.refund_policy is None else package.refund_policy

    @property
    def effective_from_ms(self) -> int:
        return clock.from_datetime(self.effective_from)

    def campaign_for(self, package_id: str, at_ms: int) -> tuple[str, Campaign] | None:
        """The campaign that applies to a purchase of ``package_id`` now (they never overlap)."""
        for campaign_id, campaign in self.campaigns.items():
            if package_id in campaign.packages and campaign.active_at(at_ms):
                return campaign_id, campaign
        return None

    def unlocked_by(self, feature_id: str) -> list[str]:
        """The packages and plans whose credits unlock a locked feature."""
        grantors: dict[str, LotTerms] = {**self.packages, **self.plans}
        return sorted(name for name, terms in grantors.items() if feature_id in terms.unlocks)


def price_per_credit(package: Package) -> Fraction:
    """Minor currency units paid per credit received, bonus included (exact)."""
    return Fraction(package.price_minor * 1000, package.credits + package.bonus_credits)


def discount(package: Package, base: Package) -> Fraction:
    """How much cheaper a credit is in ``package`` than in ``base`` (0.25 = 25 %)."""
    return 1 - price_per_credit(package) / price_per_credit(base)
