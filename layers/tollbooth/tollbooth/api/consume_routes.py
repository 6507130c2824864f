"""POST /v1/accounts/{account_id}/consume: price a request and debit it atomically."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from tollbooth.api.runtime import (
    authorize,
    error_responses,
    idempotency_key,
    json_response,
)
from tollbooth.app.idempotency import Idempotency
from tollbooth.bootstrap import get_service
from tollbooth.contracts.http import ConsumeRequest, ConsumeResponse
from tollbooth.observability import count

router = Router()
DEBITED: dict[int, OpenAPIResponse] = {
    200: {"description": "Debited", "content": {"application/json": {"model": ConsumeResponse}}}
}


@router.post(
    "/v1/accounts/<account_id>/consume",
    summary="Consume credits for a feature (the account's user, or a service)",
    responses={
        **DEBITED,
        **error_responses(
            {
                400: "Missing Idempotency-Key, malformed JSON or bad account id",
                401: "No valid credentials",
                402: "Insufficient credits; nothing was debited",
                403: "Another account's token",
                409: "Idempotency-Key reused with another body, or the account stayed busy",
                422: "Unknown feature or dimension, or invalid quantity",
            }
        ),
    },
)
def consume(account_id: str, request: ConsumeRequest):
    context = authorize(router, account_id)
    idem = Idempotency.of(idempotency_key(router), "consume", account_id, request.model_dump(mode="json"))
    outcome = get_service().consume(
        account_id, request.feature, request.quantity, request.dimensions, idem, context=context
    )
    if not outcome.replayed:
        count("Consumes")
    return json_response(outcome)
