"""Credits a service grants (service only).

POST /v1/accounts/{account_id}/grants       promotional, bonus or adjustment credits
POST /v1/accounts/{account_id}/allowances   a subscription plan's allowance for one period
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from tollbooth.api.openapi import CREATED, CREDIT_ERRORS, SERVICE, IdempotencyKey, errors
from tollbooth.api.runtime import authorize, json_response
from tollbooth.app.idempotency import Idempotency
from tollbooth.bootstrap import get_service
from tollbooth.contracts.http import AllowanceRequest, GrantRequest

router = Router()


@router.post(
    "/v1/accounts/<account_id>/grants",
    summary="Grant credits",
    operation_id="grantCredits",
    tags=["credits in"],
    security=SERVICE,
    responses={**CREATED, **CREDIT_ERRORS},
)
def grant(account_id: str, request: GrantRequest, idempotency_key: IdempotencyKey):
    context = authorize(router, account_id, creates_credits=True)
    idem = Idempotency.of(idempotency_key, "grant", account_id, request.model_dump(mode="json"))
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
    operation_id="grantAllowance",
    tags=["credits in"],
    security=SERVICE,
    responses={
        **CREATED,
        **CREDIT_ERRORS,
        **errors(
            409,
            422,
            e409="This plan's period starting at period_start was granted with another period_end, or the account "
            "stayed busy (retry)",
            e422="Unknown plan, or a period that is not current, not the plan's length, or overlaps one granted",
        ),
    },
)
def grant_allowance(account_id: str, request: AllowanceRequest):
    # No Idempotency-Key: the account, plan and period are the key.
    context = authorize(router, account_id, creates_credits=True)
    return json_response(
        get_service().grant_allowance(
            account_id,
            request.plan_id,
            request.period_start,
            request.period_end,
            payment_reference=request.payment_reference,
            context=context,
        )
    )
