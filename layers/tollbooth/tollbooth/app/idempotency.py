"""Idempotency: a request's key and fingerprint, and the answer a use case gives.

Keys are scoped to the account and kept for good with the entry they produced. A replay
gets the first answer; the same key with another request gets 409.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from tollbooth.domain.errors import (
    IdempotencyKeyMissing,
    InvalidRequest,
)
from tollbooth.domain.ledger import RESERVED_KEY_PREFIX

MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class Idempotency:
    """A request's key and the fingerprint of what it asked for."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str | None, operation: str, account_id: str, body: dict[str, Any]) -> Idempotency:
        if key is None or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            raise IdempotencyKeyMissing("send an Idempotency-Key header of 1 to 255 characters")
        if key.startswith(RESERVED_KEY_PREFIX):
            raise InvalidRequest(f"an Idempotency-Key may not start with {RESERVED_KEY_PREFIX!r}")
        return cls.derived(key, operation, account_id, body)

    @classmethod
    def derived(cls, key: str, operation: str, account_id: str, body: dict[str, Any]) -> Idempotency:
        canonical = json.dumps(
            {"operation": operation, "account_id": account_id, "body": body}, sort_keys=True, separators=(",", ":")
        )
        return cls(key, hashlib.sha256(canonical.encode()).hexdigest())


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False
