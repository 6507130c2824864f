"""POST /v1/accounts/{account_id}/grants: promotional, bonus or adjustment credits (service only)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from tollbooth.api.runtime import authorize, error_responses, get_service, idempotency_key, json_response
from tollbooth.operations import Idempotency
from tollbooth.schemas import GrantRequest, GrantResponse

router = Router()

CREDIT_ERRORS = error_responses(
    {
        400: "Missing Idempotency-Key, malformed JSON or bad account id",
        401: "No valid credentials",
        403: "Not a service",
        409: "Idempotency-Key reused with another body, or payment already granted",
        422: "Invalid body",
    }
)
CREATED: dict[int, OpenAPIResponse] = {
    201: {"description": "Lots created", "content": {"application/json": {"model": GrantResponse}}}
}


@router.post("/v1/accounts/<account_id>/grants", summary="Grant credits", responses={**CREATED, **CREDIT_ERRORS})
def grant(account_id: str, request: GrantRequest):
    authorize(router, account_id, service_only=True)
    idem = Idempotency.of(idempotency_key(router), "grant", account_id, request.model_dump(mode="json"))
    outcome = get_service().grant(
        account_id, request.credits, request.source, request.reason, request.expires_at, request.priority, idem
    )
    return json_response(outcome)
