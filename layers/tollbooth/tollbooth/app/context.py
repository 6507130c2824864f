"""Who asked for a change, carried from the entry point into every use case.

Every ledger entry an API request writes records its caller, so that an auditor can
tell which service role minted credits, or which user spent them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Caller:
    kind: Literal["user", "service", "system"]
    # A user's subject, a service's IAM principal ARN, or the job's name.
    id: str

    def record(self) -> dict[str, str]:
        """As a ledger entry stores it."""
        return {"kind": self.kind, "id": self.id}


@dataclass(frozen=True)
class RequestContext:
    caller: Caller
    request_id: str | None = None


# For callers inside Tollbooth itself (jobs, tools, tests) that act for no outside caller.
INTERNAL = RequestContext(Caller("system", "internal"))
