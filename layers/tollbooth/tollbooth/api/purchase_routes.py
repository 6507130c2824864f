"""POST /v1/accounts/{account_id}/purchases: a package bought becomes lots (service only)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from tollbooth.api.openapi import CREATED, CREDIT_ERRORS, SERVICE, IdempotencyKey
from tollbooth.api.runtime import authorize, json_response
from tollbooth.app.idempotency import Idempotency
from tollbooth.bootstrap import get_service
from tollbooth.contracts.http import PurchaseRequest
from tollbooth.observability import count

router = Router()


@router.post(
    "/v1/accounts/<account_id>/purchases",
    summary="Record a package purchase",
    operation_id="recordPurchase",
    tags=["credits in"],
    security=SERVICE,
    responses={**CREATED, **CREDIT_ERRORS},
)
def purchase(account_id: str, request: PurchaseRequest, idempotency_key: IdempotencyKey):
    context = authorize(router, account_id, creates_credits=True)
    idem = Idempotency.of(idempotency_key, "purchase", account_id, request.model_dump(mode="json"))
    outcome = get_service().purchase(account_id, request.package_id, request.payment_reference, idem, context=context)
    if not outcome.replayed:
        count("PackagesPurchased")
    return json_response(outcome)
