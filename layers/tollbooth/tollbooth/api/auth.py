"""Who is calling, from the API Gateway (HTTP API, payload v2) authorizer context.

A JWT authorizer gives ``authorizer.jwt.claims``: a user acting for the account
named by the configured claim. AWS_IAM gives ``authorizer.iam``: a service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tollbooth.errors import Forbidden, Unauthenticated


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "service"]
    name: str
    account_id: str | None = None

    def require_service(self) -> None:
        if self.kind != "service":
            raise Forbidden("this route is for services only")

    def require_account(self, account_id: str) -> None:
        if self.kind == "user" and self.account_id != account_id:
            raise Forbidden("a user token may only act on its own account")


def principal_from(event: dict[str, Any], account_claim: str) -> Principal:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    iam = authorizer.get("iam")
    if iam:
        return Principal("service", str(iam.get("userArn") or iam.get("userId") or "iam"))
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    account_id = claims.get(account_claim)
    if isinstance(account_id, str) and account_id:
        return Principal("user", str(claims.get("sub", account_id)), account_id)
    raise Unauthenticated("send a valid bearer token")
