"""Credits a service grants (service only).

POST /v1/accounts/{account_id}/grants       promotional, bonus or adjustment credits
POST /v1/accounts/{account_id}/allowances   a subscription plan's allowance for one period
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from tollbooth.api.runtime import authorize, error_responses, idempotency_key, json_response
from tollbooth.app.idempotency import Idempotency
from tollbooth.bootstrap import get_service
from tollbooth.contracts.http import AllowanceRequest, GrantRequest, GrantResponse

router = Router()

CREDIT_ERRORS = error_responses(
    {
        400: "Missing Idempotency-Key, malformed JSON or bad account id",
        401: "No valid credentials",
        403: "Not a service, or a role that may not create credits",
        409: "Idempotency-Key reused with another body, or payment already granted",
        422: "Invalid body",
    }
)
CREATED: dict[int, OpenAPIResponse] = {
    201: {"description": "Lots created", "content": {"application/json": {"model": GrantResponse}}}
}


@router.post("/v1/accounts/<account_id>/grants", summary="Grant credits", responses={**CREATED, **CREDIT_ERRORS})
def grant(account_id: str, request: GrantRequest):
    context = authorize(router, account_id, creates_credits=True)
    idem = Idempotency.of(idempotency_key(router), "grant", account_id, request.model_dump(mode="json"))
    outcome = get_service().grant(
        account_id,
        request.credits,
        request.source,
        request.reason,
        request.expires_at,
        request.priority,
        idem,
        licences=None if request.licences is None else tuple(request.licences),
        features=None if request.features is None else tuple(request.features),
        context=context,
    )
    return json_response(outcome)


@router.post(
    "/v1/accounts/<account_id>/allowances",
    summary="Grant a plan's allowance for a billing period (once per account, plan and period)",
    responses={
        **CREATED,
        **error_responses(
            {
                400: "Malformed JSON or bad account id",
                401: "No valid credentials",
                403: "Not a service, or a role that may not create credits",
                409: "This plan's period starting at period_start was already granted with another period_end",
                422: "Unknown plan, or a period that is not current, not the plan's length, or overlaps one granted",
            }
        ),
    },
)
def grant_allowance(account_id: str, request: AllowanceRequest):
    # No Idempotency-Key needed: the account, plan and period are the key.
    context = authorize(router, account_id, creates_credits=True)
    return json_response(
        get_service().grant_allowance(
            account_id, request.plan_id, request.period_start, request.period_end, context=context
        )
    )
