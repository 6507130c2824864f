"""The HTTP contract of money flowing back: refunds, disputes, reversals of charges, and
operators' corrections (adjustments and voided lots)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, WithJsonSchema

from tollbooth.contracts.common import Contract, PaymentReference, StrictModel
from tollbooth.contracts.http import CreditsOut, DrawView, PositiveCreditsIn
from tollbooth.domain.money import parse_credits

Reason = Annotated[StrictStr, Field(min_length=1, max_length=500, description="Why, for the audit trail")]
Actor = Annotated[
    StrictStr, Field(min_length=1, max_length=200, description="The operator or system that asked, for the audit trail")
]


class RefundRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"payment_reference": "pi_3NvB1x2eZvKYlo2C", "reason": "requested by customer", "actor": "support:ana"},
                {
                    "payment_reference": "pi_3NvB1x2eZvKYlo2C",
                    "amount_minor": 500,
                    "reason": "partial refund",
                    "actor": "stripe-webhook",
                },
            ]
        }
    )

    payment_reference: PaymentReference
    amount_minor: Annotated[StrictInt, Field(ge=1, le=10**12)] | None = Field(
        default=None, description="Money to refund, in the payment's minor unit; all that is left if absent"
    )
    reason: Reason
    actor: Actor


class RefundResponse(Contract):
    entry_id: str
    payment_reference: str
    refunded_minor: int = Field(description="Money this refund returns, in the payment's minor unit")
    refunded_total_minor: int = Field(description="Money refunded of the payment so far, this refund included")
    currency: str | None
    clawed_back: CreditsOut = Field(description="Credits taken back from the payment's lots")
    unrecovered: CreditsOut = Field(description="Credits the refund owed back that were already spent")
    refund_policy: Literal["debt", "absorb"] = Field(
        description="What became of the unrecovered credits: arrears (debt) or written off (absorb)"
    )
    balance: CreditsOut


def _signed_credits(value: object) -> int:
    """A signed amount of credits: a leading minus on the decimal string, or a negative integer."""
    if isinstance(value, str) and value.startswith("-"):
        return -parse_credits(value[1:])
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return -parse_credits(-value)
    return parse_credits(value)


SignedCreditsIn = Annotated[
    int,
    BeforeValidator(_signed_credits),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,3})?$", "examples": ["-12.5"]},
                {"type": "integer"},
            ],
            "description": 'Credits, signed: "12.5" adds, "-12.5" takes out; at most 3 decimal places.',
        }
    ),
]


class AdjustmentRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"credits": "25", "reason": "outage on 2027-03-02", "actor": "support:ana"},
                {"credits": "-10", "reason": "duplicate grant", "actor": "finance:li", "allow_arrears": True},
            ]
        }
    )

    credits: SignedCreditsIn
    reason: Reason
    actor: Actor
    allow_arrears: StrictBool = Field(
        default=False,
        description="Taking credits out: record what the lots cannot give as arrears, rather than refuse (402)",
    )


class AdjustmentResponse(Contract):
    entry_id: str
    credits: Annotated[str, Field(description='Credits added, or taken out (negative), e.g. "-10.000"')]
    unpaid: CreditsOut = Field(description="Of credits taken out, what the lots could not give: now arrears")
    lot_ids: list[str] = Field(description="The lot a positive adjustment created (none for a negative one)")
    balance: CreditsOut


class VoidRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "granted to the wrong account", "actor": "support:ana"}]}
    )

    reason: Reason
    actor: Actor


class VoidResponse(Contract):
    entry_id: str
    lot_id: str
    voided: CreditsOut = Field(description="Credits removed: what the lot still held")
    balance: CreditsOut


class DisputeRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "payment_reference": "pi_3NvB1x2eZvKYlo2C",
                    "status": "opened",
                    "reason": "card holder disputes the charge",
                    "actor": "stripe-webhook",
                }
            ]
        }
    )

    payment_reference: PaymentReference
    status: Literal["opened", "won", "lost"] = Field(
        description="opened freezes what is left of the payment's credits; won frees them; lost claws them back"
    )
    reason: Reason
    actor: Actor


class DisputeResponse(Contract):
    entry_id: str | None = Field(description="The dispute's ledger entry; null when this delivery changed nothing")
    payment_reference: str
    status: Literal["opened", "won", "lost"] = Field(description="The dispute's status now")
    changed: bool = Field(description="Whether this delivery moved the dispute (false: late or repeated)")
    frozen: CreditsOut = Field(description="The account's credits frozen by open disputes, now")
    clawed_back: CreditsOut = Field(description="Credits a lost dispute took back from the payment's lots")
    unrecovered: CreditsOut = Field(description="Credits a lost dispute owed back that were already spent")
    balance: CreditsOut


class ReversalRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"entry_id": "led_01jd2k8v3m0000000000000000-42", "reason": "generation failed", "actor": "worker"},
                {
                    "entry_id": "led_01jd2k8v3m0000000000000000-43",
                    "event_id": "evt_7f3a",
                    "credits": "1.5",
                    "reason": "half the frames were lost",
                    "actor": "support:ana",
                },
            ]
        }
    )

    entry_id: Annotated[StrictStr, Field(min_length=1, max_length=100, description="The consume or usage entry")]
    event_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="For a usage entry: the record to reverse (required there, refused elsewhere)"
    )
    credits: PositiveCreditsIn | None = Field(
        default=None, description="Credits to give back; all the charge has left to give back if absent"
    )
    reason: Reason
    actor: Actor


class ReversalResponse(Contract):
    entry_id: str
    charge_entry_id: str
    event_id: str | None = Field(description="The usage record reversed; null for a consume")
    reversed: CreditsOut = Field(description="Credits this reversal gave back")
    reversed_total: CreditsOut = Field(description="Credits given back of the charge so far, this reversal included")
    charged: CreditsOut = Field(description="Credits the charge took")
    arrears_reduced: CreditsOut = Field(description="Of them, what reduced the arrears the charge had added")
    arrears_paid: CreditsOut = Field(description="Of them, what paid arrears the account owed otherwise")
    written_off: CreditsOut = Field(description="Of them, what went back to lots expired since: written off at once")
    returned: list[DrawView] = Field(description="The lots the credits went back into (expired ones aside)")
    balance: CreditsOut
