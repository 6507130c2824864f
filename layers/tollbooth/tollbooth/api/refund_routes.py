"""POST /v1/accounts/{account_id}/refunds: money back for a payment, its credits clawed back (service only)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from tollbooth.api.openapi import SERVICE, IdempotencyKey, answer, errors
from tollbooth.api.runtime import authorize, json_response
from tollbooth.app.idempotency import Idempotency
from tollbooth.bootstrap import get_service
from tollbooth.contracts.money_back import RefundRequest, RefundResponse
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
