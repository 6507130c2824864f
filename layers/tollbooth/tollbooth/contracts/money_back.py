"""The HTTP contract of money flowing back: refunds (disputes, reversals and adjustments come next)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictInt, StrictStr

from tollbooth.contracts.common import Contract, PaymentReference, StrictModel
from tollbooth.contracts.http import CreditsOut

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
