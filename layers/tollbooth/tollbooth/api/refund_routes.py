"""Money back for a payment (service only).

POST /v1/accounts/{account_id}/refunds     a refund: its credits clawed back in proportion
POST /v1/accounts/{account_id}/disputes    a chargeback's status: opened, won or lost
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from tollbooth.api.openapi import SERVICE, IdempotencyKey, answer, errors
from tollbooth.api.runtime import authorize, json_response
from tollbooth.app.idempotency import Idempotency
from tollbooth.bootstrap import get_service
from tollbooth.contracts.money_back import DisputeRequest, DisputeResponse, RefundRequest, RefundResponse
from tollbooth.domain.disputes import DisputeRequest as AskedDispute
from tollbooth.domain.refunds import RefundRequest as Asked
from tollbooth.observability import count

router = Router()


@router.post(
    "/v1/accounts/<account_id>/refunds",
    summary="Refund a payment, in full or in part, and claw back the credits it granted in proportion",
    operation_id="refundPayment",
    tags=["money back"],
    security=SERVICE,
    responses={
        **answer(201, RefundResponse, "Refunded", replayable=True),
        **errors(
            400,
            401,
            403,
            404,
            409,
            422,
            503,
            e403="Not a service",
            e404="No payment of that reference granted credits to this account",
            e422="More money than the payment has left to refund, or a value the contract does not allow",
        ),
    },
)
def refund(account_id: str, request: RefundRequest, idempotency_key: IdempotencyKey):
    context = authorize(router, account_id, service_only=True)
    idem = Idempotency.of(idempotency_key, "refund", account_id, request.model_dump(mode="json"))
    asked = Asked(request.amount_minor, request.reason, request.actor)
    outcome = get_service().refund(account_id, request.payment_reference, asked, idem, context=context)
    if not outcome.replayed:
        count("PaymentsRefunded")
    return json_response(outcome)


@router.post(
    "/v1/accounts/<account_id>/disputes",
    summary="Report a payment's dispute (chargeback): opened freezes its credits, won frees them, lost claws them back",
    operation_id="reportDispute",
    tags=["money back"],
    security=SERVICE,
    responses={
        **answer(201, DisputeResponse, "The dispute moved", replayable=True),
        **answer(200, DisputeResponse, "A late or repeated delivery: nothing changed", replayable=True),
        **errors(
            400,
            401,
            403,
            404,
            409,
            422,
            503,
            e403="Not a service",
            e404="No payment of that reference granted credits to this account",
            e409="The dispute was decided the other way, or the Idempotency-Key was used for another request",
        ),
    },
)
def dispute(account_id: str, request: DisputeRequest, idempotency_key: IdempotencyKey):
    context = authorize(router, account_id, service_only=True)
    idem = Idempotency.of(idempotency_key, "dispute", account_id, request.model_dump(mode="json"))
    asked = AskedDispute(request.status, request.reason, request.actor)
    outcome = get_service().dispute(account_id, request.payment_reference, asked, idem, context=context)
    return json_response(outcome)
