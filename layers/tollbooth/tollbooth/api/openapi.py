"""How the API describes itself: security schemes, the idempotency headers, and a response
entry for every status a route can answer, all in the one error shape. Routes take their
OpenAPI pieces from here, so the document generated from the code says exactly what the
code does (docs/openapi.json is that document, committed; a test fails on drift)."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from tollbooth.contracts.http import ErrorResponse, GrantResponse

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.models import SecurityScheme, Tag

API_TITLE = "Tollbooth"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Credits for AI products: purchases, grants and allowances in; consumes out, as hard "
    "atomic debits. Amounts are decimal strings with up to three places; every mutation takes "
    "an Idempotency-Key and answers a replay with its first answer."
)


@cache
def security_schemes() -> dict[str, SecurityScheme]:
    """How callers authenticate. Built on demand: Powertools' OpenAPI models take longer to
    import than boto3, and only the document (and /docs) needs them, never a request."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

    return {
        "bearer": HTTPBearer(
            bearerFormat="JWT",
            description=(
                "PublicApi: a user's JWT (Cognito); the token's subject is the account it may act on. "
                "On the local stack, `make token ROLE=service` gives a service token too."
            ),
        ),
        "sigv4": APIKey.model_validate(
            {
                "type": "apiKey",
                "in": APIKeyIn.header,
                "name": "Authorization",
                "description": (
                    "ServiceApi: the request signed with AWS SigV4 by an IAM principal allowed "
                    "`execute-api:Invoke`; creating credits also needs a role named in CreditIssuerRoles. "
                    "A browser cannot sign SigV4: try service routes on the local stack with a bearer token."
                ),
                "x-amazon-apigateway-authtype": "awsSigv4",
            }
        ),
    }


@cache
def tags() -> list[Tag | str]:
    from aws_lambda_powertools.event_handler.openapi.models import Tag

    return [
        Tag(name="credits in", description="Purchases, grants and allowances: services only"),
        Tag(
            name="money back",
            description="Refunds and disputes of payments, with their credits clawed back, reversals of charges, "
            "and operators' audited corrections (adjustments, voided lots): services only",
        ),
        Tag(name="credits", description="Consuming credits: the account's user, or a service"),
        Tag(
            name="holds",
            description="Reserving credits before a long job, capturing what it used, releasing the rest: "
            "the account's user, or a service",
        ),
        Tag(name="accounts", description="Balances and ledgers"),
        Tag(name="catalog", description="What things cost, and quotes"),
    ]


USER_OR_SERVICE: list[dict[str, list[str]]] = [{"bearer": []}, {"sigv4": []}]
SERVICE: list[dict[str, list[str]]] = [{"sigv4": []}, {"bearer": []}]
PUBLIC: list[dict[str, list[str]]] = []

IDEMPOTENCY_HEADER = "idempotency-key"
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        # Visible ASCII with no space at either end: what survives an HTTP header unchanged.
        pattern=r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$",
        description=(
            "1 to 255 visible ASCII characters (spaces inside only), not starting with `tollbooth:`; "
            "required on every mutation. "
            "A replay with the same body gets the first answer; another body gets 409."
        ),
    ),
]

REPLAYED: dict[str, Any] = {
    "Idempotent-Replayed": {
        "description": "Present, `true`, when this is the answer first given to the same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before sending the same request again",
        "schema": {"type": "string"},
    }
}

ERROR_TEXT = {
    400: "Malformed request: JSON, body encoding, content type, Idempotency-Key or account id",
    401: "No valid credentials",
    402: "Not enough credits of the kind the request needs (nothing was debited), or a locked feature",
    403: "Another account's token, or a caller this route is not for",
    404: "No such resource",
    409: "The Idempotency-Key was used with another request, or the account stayed busy (retry)",
    422: "A value the contract or the catalog in force does not allow",
    503: "The ledger store failed; nothing was written; retry with the same Idempotency-Key",
}


def errors(*statuses: int, **texts: str) -> dict[int, OpenAPIResponse]:
    """Error responses in the one error shape; ``texts`` (``e409="..."``) overrides a description."""
    responses: dict[int, OpenAPIResponse] = {}
    for status in statuses:
        entry: OpenAPIResponse = {
            "description": texts.get(f"e{status}", ERROR_TEXT[status]),
            "content": {"application/json": {"model": ErrorResponse}},
        }
        if status in (409, 503):
            entry["headers"] = RETRY_AFTER
        responses[status] = entry
    return responses


def answer(status: int, model: type, description: str, *, replayable: bool = False) -> dict[int, OpenAPIResponse]:
    entry: OpenAPIResponse = {"description": description, "content": {"application/json": {"model": model}}}
    if replayable:
        entry["headers"] = REPLAYED
    return {status: entry}


# What every route that creates credits answers.
CREATED = answer(201, GrantResponse, "Lots created", replayable=True)
CREDIT_ERRORS = errors(
    400,
    401,
    403,
    409,
    422,
    503,
    e403="Not a service, or a role that may not create credits (CreditIssuerRoles)",
    e409="Idempotency-Key used with another request, payment already granted, or the account stayed busy (retry)",
)


def with_canonical_headers(document: dict[str, Any]) -> dict[str, Any]:
    """Header parameters under the names the README and every client use (HTTP header names
    are case-insensitive; Powertools lower-cases them)."""
    for operation in (op for ops in document.get("paths", {}).values() for op in ops.values()):
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "header" and parameter["name"] == IDEMPOTENCY_HEADER:
                parameter["name"] = "Idempotency-Key"
    return document


def without_unused_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """The document less the component schemas nothing refers to (Powertools adds its own
    validation-error shapes; ours is ErrorResponse), so generated clients carry no dead types."""
    schemas = document.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending = [{key: value for key, value in document.items() if key != "components"}]
    while pending:
        text = json.dumps(pending.pop())
        for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)) - used:
            used.add(name)
            pending.append(schemas.get(name, {}))
    document.setdefault("components", {})["schemas"] = {name: schemas[name] for name in sorted(used & set(schemas))}
    return document
