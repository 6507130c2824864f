"""Who is calling, from the API Gateway (HTTP API, payload v2) authorizer context.

A JWT authorizer gives ``authorizer.jwt.claims``: a user acting for the account
named by the configured claim. AWS_IAM gives ``authorizer.iam``: a service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tollbooth.app.context import Caller, RequestContext, role_of
from tollbooth.domain.errors import Forbidden, Unauthenticated


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

    def require_credit_issuer(self, roles: tuple[str, ...]) -> None:
        """Only the service roles the deployment names may create credits."""
        role = role_of(self.name) if self.kind == "service" else None
        if role is None or role not in roles:
            raise Forbidden(
                f"role {role or self.name!r} may not create credits; "
                "the deployment's CreditIssuerRoles parameter names the roles that may"
            )

    def context(self, request_id: str | None = None) -> RequestContext:
        return RequestContext(Caller(self.kind, self.name), request_id)


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
