"""Reads: GET balance and GET ledger (the account's user, or a service)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from tollbooth.api.openapi import USER_OR_SERVICE, answer, errors
from tollbooth.api.runtime import authorize
from tollbooth.app.views import LEDGER_PAGE_MAX
from tollbooth.bootstrap import get_service
from tollbooth.contracts.history import LedgerPageResponse
from tollbooth.contracts.holds import HoldsResponse
from tollbooth.contracts.http import BalanceResponse

router = Router()


@router.get(
    "/v1/accounts/<account_id>/balance",
    summary="Available credits, lots and the next expiry",
    operation_id="getBalance",
    tags=["accounts"],
    security=USER_OR_SERVICE,
    responses={**answer(200, BalanceResponse, "The balance as of now"), **errors(400, 401, 403, 422, 503)},
)
def balance(account_id: str) -> BalanceResponse:
    authorize(router, account_id)
    return get_service().balance(account_id)


@router.get(
    "/v1/accounts/<account_id>/ledger",
    summary="Ledger entries, newest first",
    operation_id="listLedgerEntries",
    tags=["accounts"],
    security=USER_OR_SERVICE,
    responses={
        **answer(200, LedgerPageResponse, "A page of entries; pass next_cursor back as cursor for the next"),
        **errors(400, 401, 403, 422, 503, e400="A cursor this API did not return, or a bad account id"),
    },
)
def ledger(
    account_id: str,
    limit: Annotated[int, Query(ge=1, le=LEDGER_PAGE_MAX)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> LedgerPageResponse:
    authorize(router, account_id)
    return get_service().ledger(account_id, limit, cursor)


@router.get(
    "/v1/accounts/<account_id>/holds",
    summary="The account's holds, newest first (the latest 100, open and closed)",
    operation_id="listHolds",
    tags=["holds"],
    security=USER_OR_SERVICE,
    responses={**answer(200, HoldsResponse, "The holds"), **errors(400, 401, 403, 422, 503)},
)
def holds(account_id: str) -> HoldsResponse:
    authorize(router, account_id)
    return get_service().holds.listing(account_id)
