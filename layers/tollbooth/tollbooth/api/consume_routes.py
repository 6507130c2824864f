"""POST /v1/accounts/{account_id}/consume: price a request and debit it atomically."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from tollbooth.api.openapi import USER_OR_SERVICE, IdempotencyKey, answer, errors
from tollbooth.api.runtime import authorize, json_response
from tollbooth.app.idempotency import Idempotency
from tollbooth.bootstrap import get_service
from tollbooth.contracts.http import ConsumeRequest, ConsumeResponse
from tollbooth.observability import count

router = Router()


@router.post(
    "/v1/accounts/<account_id>/consume",
    summary="Consume credits for a feature (the account's user, or a service)",
    operation_id="consume",
    tags=["credits"],
    security=USER_OR_SERVICE,
    responses={
        **answer(200, ConsumeResponse, "Debited", replayable=True),
        **errors(400, 401, 402, 403, 409, 422, 503),
    },
)
def consume(account_id: str, request: ConsumeRequest, idempotency_key: IdempotencyKey):
    context = authorize(router, account_id)
    idem = Idempotency.of(idempotency_key, "consume", account_id, request.model_dump(mode="json"))
    outcome = get_service().consume(
        account_id, request.feature, request.quantity, request.dimensions, idem, context=context
    )
    if not outcome.replayed:
        count("Consumes")
    return json_response(outcome)
