"""The usage message contract (version 1): what AI workers send through SQS.

One SQS message carries a batch of usage records:

    {"schema": "tollbooth.usage/v1", "records": [{...}, ...]}

Each record is validated on its own, so one bad record never spoils its neighbours.
docs/usage.md documents the fields; ``UsageClient`` (tollbooth.usage_client) sends them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictInt, StrictStr, ValidationError

from tollbooth.contracts.common import AccountId, Instant, Name, StrictModel, describe_problems

SCHEMA = "tollbooth.usage/v1"
MAX_RECORDS_PER_MESSAGE = 500

NonNegative = Annotated[StrictInt, Field(ge=0, le=10**15)]


class ProviderCost(StrictModel):
    """What the work cost upstream (the model provider), in minor units of a currency."""

    amount_minor: NonNegative
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]


class UsageRecord(StrictModel):
    # Unique per account, chosen by the worker: the record is charged once, whatever happens.
    event_id: Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@/\-]+$")]
    account_id: AccountId
    feature: Name
    quantity: Annotated[StrictInt, Field(ge=1, le=1_000_000_000)]
    dimensions: dict[Name, Name] = Field(default_factory=dict, max_length=16)
    # When the work was done (bounded like every instant; how late it may arrive is the
    # ingestion's policy, not the contract's).
    occurred_at: Instant
    worker_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    # Resource metrics, kept with the charge for margin reports.
    tokens_in: NonNegative | None = None
    tokens_out: NonNegative | None = None
    gpu_ms: NonNegative | None = None
    model: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    provider_cost: ProviderCost | None = None

    def fingerprint(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def metrics(self) -> dict[str, Any]:
        """The resource metrics, as stored with the charge."""
        return self.model_dump(
            mode="json", include={"tokens_in", "tokens_out", "gpu_ms", "model", "provider_cost"}, exclude_none=True
        )


class UsageMessage(StrictModel):
    schema_: Literal["tollbooth.usage/v1"] = Field(alias="schema")
    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS_PER_MESSAGE)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Rejected(StrictModel):
    """A record (or a whole message) that cannot be charged, and why."""

    reason: str
    record: Any  # as received


def _reason(error: ValidationError) -> str:
    return describe_problems(error.errors())


def parse_message(body: str) -> tuple[list[UsageRecord], list[Rejected]]:
    """Split a message into valid records and rejected ones; never raises."""
    try:
        message = UsageMessage.model_validate_json(body)
    except ValidationError as error:
        return [], [Rejected(reason=f"message: {_reason(error)}", record=body)]
    valid, rejected = [], []
    for raw in message.records:
        try:
            valid.append(UsageRecord.model_validate(raw))
        except ValidationError as error:
            rejected.append(Rejected(reason=_reason(error), record=raw))
    return valid, rejected


def message_body(records: list[dict[str, Any]]) -> str:
    return json.dumps({"schema": SCHEMA, "records": records}, separators=(",", ":"))
