"""Holds: reserve credits before a long job, capture what it used, release the rest
(the account's user, or a service).

POST /v1/accounts/{account_id}/holds                        place a hold
POST /v1/accounts/{account_id}/holds/{hold_id}/capture      charge what the job used, once
POST /v1/accounts/{account_id}/holds/{hold_id}/release      release it
(GET /v1/accounts/{account_id}/holds, a read, is with the account's other reads.)
"""

from __future__ import annotations

import re

from aws_lambda_powertools.event_handler.api_gateway import Router

from tollbooth.api.openapi import USER_OR_SERVICE, IdempotencyKey, answer, errors
from tollbooth.api.runtime import authorize, json_response
from tollbooth.app.idempotency import Idempotency
from tollbooth.bootstrap import get_service
from tollbooth.contracts.holds import (
    HOLD_ID_PATTERN,
    CaptureRequest,
    CaptureResponse,
    HoldRequest,
    HoldResponse,
    ReleaseResponse,
)
from tollbooth.domain import holds
from tollbooth.domain.errors import HoldNotFound

router = Router()


def _known(hold_id: str) -> str:
    """A hold id as Tollbooth makes them; anything else names no hold (and is never read)."""
    if not re.fullmatch(HOLD_ID_PATTERN, hold_id):
        raise HoldNotFound(f"the account has no hold {hold_id[:64]!r}")
    return hold_id


@router.post(
    "/v1/accounts/<account_id>/holds",
    summary="Reserve credits before a long job: they leave available at once",
    operation_id="placeHold",
    tags=["holds"],
    security=USER_OR_SERVICE,
    responses={
        **answer(201, HoldResponse, "Held", replayable=True),
        **errors(
            400,
            401,
            402,
            403,
            409,
            422,
            503,
            e402="The spendable credits do not cover the hold",
            e409="The account has as many open holds as the catalog allows, or the key was used for another request",
            e422="Longer than the catalog's max_hold_seconds, or a feature, dimension or quantity the catalog refuses",
        ),
    },
)
def place(account_id: str, request: HoldRequest, idempotency_key: IdempotencyKey):
    context = authorize(router, account_id)
    idem = Idempotency.of(idempotency_key, "hold", account_id, request.model_dump(mode="json"))
    asked = holds.HoldRequest(
        request.feature, request.quantity, request.dimensions, request.credits, request.expires_in_seconds
    )
    return json_response(get_service().holds.place(account_id, asked, idem, context=context))


@router.post(
    "/v1/accounts/<account_id>/holds/<hold_id>/capture",
    summary="Charge what the job used, once: from the hold first, the rest released",
    operation_id="captureHold",
    tags=["holds"],
    security=USER_OR_SERVICE,
    responses={
        **answer(201, CaptureResponse, "Captured", replayable=True),
        **errors(
            400,
            401,
            403,
            404,
            409,
            422,
            503,
            e404="The account has no hold of that id",
            e409="The hold was captured already (a hold is captured once)",
        ),
    },
)
def capture(account_id: str, hold_id: str, request: CaptureRequest, idempotency_key: IdempotencyKey):
    context = authorize(router, account_id)
    body = {"hold_id": hold_id, **request.model_dump(mode="json")}
    idem = Idempotency.of(idempotency_key, "capture", account_id, body)
    outcome = get_service().holds.capture(
        account_id, _known(hold_id), request.quantity, request.credits, idem, context=context
    )
    return json_response(outcome)


@router.post(
    "/v1/accounts/<account_id>/holds/<hold_id>/release",
    summary="Release a hold: its credits go back to their lots",
    operation_id="releaseHold",
    tags=["holds"],
    security=USER_OR_SERVICE,
    responses={
        **answer(201, ReleaseResponse, "Released", replayable=True),
        **answer(200, ReleaseResponse, "Released or expired already: nothing changed", replayable=True),
        **errors(
            400,
            401,
            403,
            404,
            409,
            422,
            503,
            e404="The account has no hold of that id",
            e409="The hold was captured: there is nothing left to release",
        ),
    },
)
def release(account_id: str, hold_id: str, idempotency_key: IdempotencyKey):
    context = authorize(router, account_id)
    idem = Idempotency.of(idempotency_key, "release", account_id, {"hold_id": hold_id})
    return json_response(get_service().holds.release(account_id, _known(hold_id), idem, context=context))
