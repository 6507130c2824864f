"""The HTTP contract of holds: reserve credits before a long job, capture what it used,
release the rest (docs/ledger.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictInt, model_validator

from tollbooth.contracts.common import Contract, Name, StrictModel
from tollbooth.contracts.http import CreditsOut, DrawView, PositiveCreditsIn, Timestamp

Quantity = Annotated[StrictInt, Field(ge=1, le=1_000_000_000)]
HoldStatus = Literal["open", "captured", "released", "expired"]
# A hold's id as Tollbooth makes it (a path parameter: checked before any read), ending in
# ``s<slice>`` when it was placed on an escrow slice (``ids.hold_id``).
HOLD_ID_PATTERN = r"^hold_[0-9a-z]{26}(s[0-9]{1,3})?$"


class HoldRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"feature": "video_generation", "quantity": 60, "expires_in_seconds": 3600},
                {"credits": "25", "expires_in_seconds": 900},
            ]
        }
    )

    feature: Name | None = Field(default=None, description="The job's feature: its price is reserved")
    quantity: Quantity | None = Field(default=None, description="The most the job may use, with feature")
    dimensions: dict[Name, Name] = Field(
        default_factory=dict,
        max_length=16,
        description="How the job is done, as for consume",
        json_schema_extra={"additionalProperties": {"type": "string", "minLength": 1, "maxLength": 64}},
    )
    credits: PositiveCreditsIn | None = Field(default=None, description="Or reserve bare credits")
    expires_in_seconds: Annotated[StrictInt, Field(ge=1, le=10**10)] = Field(
        default=900, description="When the hold releases itself unless captured (at most the catalog's maximum)"
    )

    @model_validator(mode="after")
    def _one_way(self) -> HoldRequest:
        by_feature = self.feature is not None and self.quantity is not None
        if by_feature == (self.credits is not None) or (self.feature is None) != (self.quantity is None):
            raise ValueError("send feature and quantity, or credits")
        return self


WHOLE_ONLY = (
    "null when the change was written on one escrow slice of a busy account, or on its own side "
    "while slices hold credits: only the whole account knows it (read the balance route)"
)


class HoldResponse(Contract):
    hold_id: str
    status: HoldStatus
    credits: CreditsOut = Field(description="Credits reserved: they left available at once")
    expires_at: Timestamp
    lots: list[DrawView] = Field(description="What the hold took of each lot, in burn-down order")
    entry_id: str
    available: CreditsOut | None = Field(description=WHOLE_ONLY)


class CaptureRequest(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"quantity": 42}, {"credits": "12.5"}]})

    quantity: Quantity | None = Field(default=None, description="What the job used, priced as the hold was")
    credits: PositiveCreditsIn | None = Field(default=None, description="Or the credits to charge")

    @model_validator(mode="after")
    def _one_way(self) -> CaptureRequest:
        if (self.quantity is None) == (self.credits is None):
            raise ValueError("send quantity, or credits")
        return self


class CaptureResponse(Contract):
    hold_id: str
    entry_id: str
    captured: CreditsOut = Field(description="Credits charged for the job")
    from_hold: CreditsOut = Field(description="Of them, what the hold paid")
    unpaid: CreditsOut = Field(description="Of them, what no credits could pay: now arrears (the work was done)")
    released: CreditsOut = Field(description="What the hold held beyond the charge, back in its lots")
    arrears_paid: CreditsOut = Field(description="What it held beyond the charge that paid the arrears first")
    written_off: CreditsOut = Field(description="What it held of lots expired meanwhile: written off")
    balance: CreditsOut | None = Field(description=WHOLE_ONLY)


class ReleaseResponse(Contract):
    hold_id: str
    status: HoldStatus = Field(description="The hold's status now")
    changed: bool = Field(description="Whether this request released it (false: it was released or expired)")
    entry_id: str | None
    released: CreditsOut = Field(description="Credits back in their lots")
    arrears_paid: CreditsOut = Field(description="Credits it held that paid the arrears first")
    written_off: CreditsOut = Field(description="What it held of lots expired meanwhile: written off")
    available: CreditsOut | None = Field(description=WHOLE_ONLY)


class HoldView(Contract):
    hold_id: str
    status: HoldStatus
    credits: CreditsOut = Field(description="Reserved when placed")
    held: CreditsOut = Field(description="Held now (0 once closed)")
    captured: CreditsOut
    feature: str | None
    quantity: int | None
    placed_at: Timestamp
    expires_at: Timestamp
    closed_at: Timestamp | None


class HoldsResponse(Contract):
    account_id: str
    held: CreditsOut = Field(description="What the open holds hold")
    holds: list[HoldView] = Field(description="Newest first, open and closed")
