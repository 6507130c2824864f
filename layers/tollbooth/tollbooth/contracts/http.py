"""HTTP request and response models (version 1 of the contract).

Separate from the domain dataclasses (``ledger``) and the storage models
(``repository``). Amounts leave as decimal strings; they arrive as decimal
strings or integers, never as floats.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr, WithJsonSchema

from tollbooth.contracts.common import Contract, Identifier, Instant, Name, PaymentReference, StrictModel
from tollbooth.domain.money import parse_credits

CreditsIn = Annotated[
    int,
    BeforeValidator(parse_credits),
    # What a client sends, whatever pydantic would infer from the int it becomes.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,3})?$", "examples": ["12.5"]},
                {"type": "integer", "minimum": 0},
            ],
            "description": 'Credits as a decimal string ("12.5") or an integer; at most 3 decimal places.',
        }
    ),
]


def _positive(millicredits: int) -> int:
    if millicredits <= 0:
        raise ValueError("credits must be greater than 0")
    return millicredits


PositiveCreditsIn = Annotated[CreditsIn, AfterValidator(_positive)]
CreditsOut = Annotated[str, Field(description='Credits as a decimal string with 3 places, e.g. "12.500".')]
Timestamp = Annotated[str, Field(description="ISO-8601 UTC with milliseconds, e.g. 2027-01-31T00:00:00.000Z")]


class PurchaseRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"package_id": "standard", "payment_reference": "pi_3NvB1x2eZvKYlo2C"}]}
    )

    package_id: Name
    payment_reference: PaymentReference


class GrantRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "credits": "12.5",
                    "source": "promotional",
                    "reason": "launch week",
                    "expires_at": "2027-06-30T00:00:00Z",
                }
            ]
        }
    )

    credits: PositiveCreditsIn
    source: Literal["bonus", "promotional"] = Field(
        description="Corrections go to POST /v1/accounts/{account_id}/adjustments, which records who asked"
    )
    reason: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    expires_at: Instant | None = None
    priority: Annotated[StrictInt, Field(ge=0, le=1000)] | None = None
    licences: list[Identifier] | None = Field(
        default=None, min_length=1, max_length=16, description="The licences these credits may pay for (all if absent)"
    )
    features: list[Identifier] | None = Field(
        default=None, min_length=1, max_length=64, description="The features these credits may pay for (all if absent)"
    )


class AllowanceRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"plan_id": "pro_monthly", "period_start": "2027-01-01T00:00:00Z"}]}
    )

    plan_id: Name
    period_start: Instant = Field(description="The instant the billing period starts")
    period_end: Instant | None = Field(
        default=None, description="When it ends; one plan period (calendar months) later if absent"
    )
    payment_reference: PaymentReference | None = Field(
        default=None,
        description="The payment that funded this period: a refund or dispute of it claws the allowance back",
    )


class ConsumeRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "feature": "image_generation",
                    "quantity": 2,
                    "dimensions": {"resolution": "4k", "licence": "commercial"},
                }
            ]
        }
    )

    feature: Name
    quantity: Annotated[StrictInt, Field(ge=1, le=1_000_000_000)]
    dimensions: dict[Name, Name] = Field(
        default_factory=dict,
        max_length=16,
        description='How the request is done, e.g. {"resolution": "hd", "licence": "commercial"}',
        json_schema_extra={"additionalProperties": {"type": "string", "minLength": 1, "maxLength": 64}},
    )


class LotView(Contract):
    lot_id: str
    source: str
    granted: CreditsOut
    remaining: CreditsOut
    expires_at: Timestamp | None
    priority: int
    created_at: Timestamp
    package_id: str | None = None
    price_minor: int | None = None
    currency: str | None = None
    reason: str | None = None
    licences: list[str] | None = Field(description="The licences this lot may pay for; null means any")
    features: list[str] | None = Field(description="The features this lot may pay for; null means any")
    priority_processing: bool = False
    unlocks: list[str] = Field(default_factory=list, description="Locked features this lot unlocks")
    campaign_id: str | None = None
    plan_id: str | None = None


class PerksView(Contract):
    priority_processing: bool = Field(description="Some spendable lot carries priority processing")
    unlocked_features: list[str] = Field(description="Locked features some spendable lot unlocks")


class NextExpiry(Contract):
    expires_at: Timestamp
    amount: CreditsOut


class Totals(Contract):
    granted: CreditsOut
    consumed: CreditsOut
    expired: CreditsOut
    clawed_back: CreditsOut = Field(description="Taken back by refunds, from lots or into arrears")
    adjusted: CreditsOut = Field(description="Operators' adjustments, net: added less taken out (may be negative)")
    voided: CreditsOut = Field(description="Removed with the lots operators voided")
    reversed: CreditsOut = Field(description="Given back by reversals of charges (which stay in consumed)")


class BalanceResponse(Contract):
    account_id: str
    frozen: CreditsOut = Field(
        default="0.000", description="Credits an open dispute of their payment froze: in the balance, not available"
    )
    held: CreditsOut = Field(
        default="0.000", description="Credits open holds reserved: in the balance, not available until released"
    )
    available: CreditsOut = Field(description="Spendable now: unexpired lots only.")
    balance: CreditsOut = Field(
        description="Ledger balance: granted - consumed - expired - clawed_back; negative in arrears."
    )
    arrears: CreditsOut = Field(description="Usage already performed that credits did not cover; paid off first.")
    totals: Totals
    lots: list[LotView]
    perks: PerksView
    next_expiry: NextExpiry | None
    expiring_within_days: int = Field(description="The window the expiring list covers")
    expiring: list[NextExpiry] = Field(description="Credits that expire within the window, per instant")
    as_of: Timestamp


class GrantResponse(Contract):
    entry_id: str
    lots: list[LotView]
    balance: CreditsOut


class ConsumeResponse(Contract):
    entry_id: str
    charged: CreditsOut
    balance: CreditsOut | None = Field(
        description="Credits available after it; null when an escrow slice of a busy account served it "
        "(the slice knows only what it holds: GET the balance for the account's)"
    )
    catalog_version: str


class DrawView(Contract):
    lot_id: str
    amount: CreditsOut


class ErrorBody(Contract):
    code: str = Field(description="Stable, machine-readable: insufficient_credits, idempotency_key_reused, ...")
    message: str = Field(description="For people; never AWS error text")
    required: CreditsOut | None = Field(default=None, description="insufficient_credits: what the request costs")
    balance: CreditsOut | None = Field(default=None, description="insufficient_credits: what could pay for it")
    missing: dict[str, str] | None = Field(
        default=None, description='insufficient_credits: the kind of credits short, e.g. {"licence": "commercial"}'
    )
    allowed: list[str] | None = Field(default=None, description="The values that would have been accepted")


class ErrorResponse(Contract):
    error: ErrorBody


class QuoteRequest(ConsumeRequest):
    """The same request as a consume: a quote prices it exactly as the debit would."""


class MultiplierView(Contract):
    dimension: str
    value: str
    multiplier: str


class QuoteBreakdown(Contract):
    unit: str
    base: str = Field(description="quantity x credits / per, exact")
    multipliers: list[MultiplierView]
    exact: str = Field(description="base x multipliers, exact (a fraction when it has no decimal form)")
    granularity: CreditsOut
    rounded: CreditsOut = Field(description="exact, rounded up to the granularity")
    minimum: CreditsOut


class QuoteResponse(Contract):
    feature: str
    quantity: int
    dimensions: dict[str, str]
    credits: CreditsOut = Field(description="What a consume of the same request would debit now")
    catalog_version: str
    breakdown: QuoteBreakdown


class CatalogVersionView(Contract):
    version: str
    effective_from: Timestamp
    in_force: bool


class DimensionView(Contract):
    default: str
    values: dict[str, str] = Field(description="Value -> multiplier, an exact decimal")


class FeatureView(Contract):
    description: str
    unit: str
    credits: CreditsOut = Field(description="Charged per `per` units")
    per: int
    granularity: CreditsOut = Field(description="A request's charge rounds up to a multiple of this")
    minimum: CreditsOut
    max_quantity: int
    locked: bool = Field(description="Needs credits of a package or plan that unlocks it")
    unlocked_by: list[str]
    dimensions: dict[str, DimensionView]


class _Terms(Contract):
    licences: list[str] | None = Field(description="The licences these credits may pay for; null means any")
    features: list[str] | None = Field(description="The features these credits may pay for; null means any")
    priority_processing: bool
    unlocks: list[str]


class PackageView(_Terms):
    name: str
    price_minor: int = Field(description="The price in minor units of `currency`")
    currency: str
    credits: CreditsOut
    bonus_credits: CreditsOut
    expiry: str = Field(description='"never", "N days", "N months" or "end of billing period"')
    bonus_expiry: str
    price_per_credit_minor: str = Field(description="Display only: minor units per credit, bonus included")
    discount_percent: str | None = Field(description="Display only: % off the base package's price per credit")


class PlanView(_Terms):
    name: str
    period: Literal["monthly", "yearly"]
    price_minor: int
    currency: str
    allowance: CreditsOut
    rollover_cap: CreditsOut
    expiry: str


class CampaignView(Contract):
    name: str
    starts_at: Timestamp
    ends_at: Timestamp
    bonus_percent: str
    packages: list[str]
    active: bool


class CatalogResponse(Contract):
    version: str
    effective_from: Timestamp
    in_force: bool
    versions: list[CatalogVersionView]
    base_package: str | None
    licences: list[str]
    default_licence: str
    features: dict[str, FeatureView]
    packages: dict[str, PackageView]
    plans: dict[str, PlanView]
    campaigns: dict[str, CampaignView]
