"""Operators' corrections, audited (service only).

POST /v1/accounts/{account_id}/adjustments           add credits, or take them out
POST /v1/accounts/{account_id}/lots/{lot_id}/void    remove what is left of a lot
POST /v1/accounts/{account_id}/reversals             give back a charge, or part of it
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from tollbooth.api.openapi import SERVICE, IdempotencyKey, answer, errors
from tollbooth.api.runtime import authorize, json_response
from tollbooth.app.idempotency import Idempotency
from tollbooth.bootstrap import get_service
from tollbooth.contracts.money_back import (
    AdjustmentRequest,
    AdjustmentResponse,
    ReversalRequest,
    ReversalResponse,
    VoidRequest,
    VoidResponse,
)
from tollbooth.domain import reversals
from tollbooth.domain.adjustments import Correction

router = Router()


@router.post(
    "/v1/accounts/<account_id>/adjustments",
    summary="Add credits to an account, or take them out, with the reason and who asked",
    operation_id="adjustCredits",
    tags=["money back"],
    security=SERVICE,
    responses={
        **answer(201, AdjustmentResponse, "Adjusted", replayable=True),
        **errors(
            400,
            401,
            402,
            403,
            409,
            422,
            503,
            e402="Taking out more than the balance, without allow_arrears",
            e403="Not a service, or (adding credits) not a role the deployment allows to create credits",
            e422="Zero credits, more than one grant may create, or a value the contract does not allow",
        ),
    },
)
def adjust(account_id: str, request: AdjustmentRequest, idempotency_key: IdempotencyKey):
    # Adding credits mints them: the same allow-list as grants. Taking them out: any service.
    context = authorize(router, account_id, service_only=True, creates_credits=request.credits > 0)
    idem = Idempotency.of(idempotency_key, "adjustment", account_id, request.model_dump(mode="json"))
    correction = Correction(request.reason, request.actor)
    outcome = get_service().adjust(
        account_id, request.credits, correction, request.allow_arrears, idem, context=context
    )
    return json_response(outcome)


@router.post(
    "/v1/accounts/<account_id>/lots/<lot_id>/void",
    summary="Void a lot: remove what it still holds, with the reason and who asked",
    operation_id="voidLot",
    tags=["money back"],
    security=SERVICE,
    responses={
        **answer(201, VoidResponse, "Voided", replayable=True),
        **errors(
            400,
            401,
            403,
            404,
            409,
            422,
            503,
            e403="Not a service",
            e404="The account holds no credits in a lot of that id",
        ),
    },
)
def void(account_id: str, lot_id: str, request: VoidRequest, idempotency_key: IdempotencyKey):
    context = authorize(router, account_id, service_only=True)
    idem = Idempotency.of(idempotency_key, "void", account_id, {"lot_id": lot_id, **request.model_dump(mode="json")})
    outcome = get_service().void(account_id, lot_id, Correction(request.reason, request.actor), idem, context=context)
    return json_response(outcome)


@router.post(
    "/v1/accounts/<account_id>/reversals",
    summary="Give back a charge (a failed generation, or one usage record), or part of it",
    operation_id="reverseCharge",
    tags=["money back"],
    security=SERVICE,
    responses={
        **answer(201, ReversalResponse, "Reversed", replayable=True),
        **errors(
            400,
            401,
            403,
            404,
            409,
            422,
            503,
            e403="Not a service",
            e404="The account has no ledger entry of that id",
            e422="Not a charge (a reversal, a grant...), no such usage record, or more than the charge has left",
        ),
    },
)
def reverse(account_id: str, request: ReversalRequest, idempotency_key: IdempotencyKey):
    context = authorize(router, account_id, service_only=True)
    idem = Idempotency.of(idempotency_key, "reversal", account_id, request.model_dump(mode="json"))
    asked = reversals.ReversalRequest(
        request.entry_id, request.event_id, request.credits, request.reason, request.actor
    )
    return json_response(get_service().reverse(account_id, asked, idem, context=context))
