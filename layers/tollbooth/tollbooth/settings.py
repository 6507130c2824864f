"""Runtime settings: read once from the environment and validated."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from tollbooth.domain.expiry import ExpiryIndexing


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3)
    region: str = "us-east-1"
    # The JWT claim that names the caller's account (Cognito's "sub" by default).
    account_claim: str = "sub"
    # Optimistic-concurrency attempts per mutation before answering 409 concurrent_update.
    max_write_attempts: int = Field(default=40, ge=1, le=100)  # within Writes' time budget
    # Swagger UI at /docs; on for the local stack, off by default when deployed.
    enable_swagger: bool = False
    # credits.expiring goes out this many days before a lot expires (0: never).
    expiry_warning_days: int = Field(default=7, ge=0, le=365)
    # Partitions of the expiry index (raise, never lower).
    expiry_shards: int = Field(default=8, ge=1, le=256)
    # Where the expiry sweep publishes its events (only the expiry function needs it).
    event_bus_name: str | None = None
    # Where the usage consumer sends records it can never charge (only it needs this).
    usage_dlq_url: str | None = None
    # The usage queue's maxReceiveCount: on that receive, what cannot be charged is
    # dead-lettered with its reason rather than left for SQS to move without one.
    usage_max_receives: int = Field(default=5, ge=1, le=1000)
    # The IAM roles allowed to create credits (purchases, grants, allowances); none if empty.
    credit_issuer_roles: tuple[str, ...] = ()
    # Escrow slices a contended account's consumes spread over (0: none; see domain.slices).
    # More slices than concurrent containers keeps them apart; each costs a read of the balance.
    hot_account_slices: int = Field(default=32, ge=0, le=64)
    # Lots whose draws the account item keeps before their items are written (domain.unsettled;
    # 0: every draw written on its lot, the way to deploy this over a version that ignores them).
    unsettled_lots: int = Field(default=2, ge=0, le=4)
    # Items DynamoDB accepts in one transaction (100; older DynamoDB Local builds take 10).
    max_transaction_items: int = Field(default=100, ge=10, le=100)

    @property
    def expiry_indexing(self) -> ExpiryIndexing:
        return ExpiryIndexing(warning_window=self.expiry_warning_days * 86_400_000, shards=self.expiry_shards)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "table_name": env.get("TABLE_NAME", ""),
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        }
        optional = {
            "account_claim": "ACCOUNT_CLAIM",
            "max_write_attempts": "MAX_WRITE_ATTEMPTS",
            "enable_swagger": "ENABLE_SWAGGER",
            "expiry_warning_days": "EXPIRY_WARNING_DAYS",
            "expiry_shards": "EXPIRY_SHARDS",
            "event_bus_name": "EVENT_BUS_NAME",
            "usage_dlq_url": "USAGE_DLQ_URL",
            "usage_max_receives": "USAGE_MAX_RECEIVES",
            "max_transaction_items": "MAX_TRANSACTION_ITEMS",
            "hot_account_slices": "HOT_ACCOUNT_SLICES",
            "unsettled_lots": "UNSETTLED_LOTS",
        }
        values.update({field: env[name] for field, name in optional.items() if env.get(name)})
        roles = env.get("CREDIT_ISSUER_ROLES", "")
        values["credit_issuer_roles"] = tuple(role.strip() for role in roles.split(",") if role.strip())
        return cls.model_validate(values)


@cache
def get_settings() -> Settings:
    return Settings.from_env()
