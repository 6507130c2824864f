"""Who asked for a change, carried from the entry point into every use case.

Every ledger entry an API request writes records its caller, so that an auditor can
tell which service role minted credits, or which user spent them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


def role_of(principal_arn: str) -> str | None:
    """The IAM role behind a caller's ARN: ``arn:aws:sts::1:assumed-role/NAME/session``
    (how a role's SigV4 requests arrive) or ``arn:aws:iam::1:role/path/NAME``."""
    resource = principal_arn.split(":", 5)[-1] if principal_arn.startswith("arn:") else ""
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role" and rest:
        return rest.split("/", 1)[0]
    if kind == "role" and rest:
        return rest.rsplit("/", 1)[-1]
    return None


@dataclass(frozen=True)
class Caller:
    kind: Literal["user", "service", "system"]
    # A user's subject, a service's IAM principal ARN, or the job's name.
    id: str

    def record(self) -> dict[str, str]:
        """As a ledger entry stores it (in full, for audits)."""
        return {"kind": self.kind, "id": self.id}


def shown(record: dict[str, str]) -> dict[str, str]:
    """A stored caller as the API shows it: a service by its role's name, never its ARN (which
    names the AWS account) since an account's user may read its ledger."""
    if record.get("kind") == "service":
        return {"kind": "service", "id": role_of(record.get("id", "")) or "service"}
    return dict(record)


@dataclass(frozen=True)
class RequestContext:
    caller: Caller
    request_id: str | None = None


# For callers inside Tollbooth itself (jobs, tools, tests) that act for no outside caller.
INTERNAL = RequestContext(Caller("system", "internal"))
