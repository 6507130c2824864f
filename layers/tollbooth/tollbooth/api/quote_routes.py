"""POST /v1/quotes: what a consume would cost, and why; debits nothing."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from tollbooth.api.openapi import USER_OR_SERVICE, answer, errors
from tollbooth.api.runtime import current_principal
from tollbooth.contracts.http import MultiplierView, QuoteBreakdown, QuoteRequest, QuoteResponse
from tollbooth.domain.catalog import load_history
from tollbooth.domain.clock import now_ms
from tollbooth.domain.money import format_credits, format_exact, format_fraction
from tollbooth.domain.pricing import Charge, price

router = Router()


def quote_view(charge: Charge, unit: str) -> QuoteResponse:
    return QuoteResponse(
        feature=charge.feature,
        quantity=charge.quantity,
        dimensions=charge.dimensions,
        credits=format_credits(charge.amount),
        catalog_version=charge.catalog_version,
        breakdown=QuoteBreakdown(
            unit=unit,
            base=format_exact(charge.base),
            multipliers=[
                MultiplierView(dimension=m.dimension, value=m.value, multiplier=format_fraction(m.factor))
                for m in charge.multipliers
            ],
            exact=format_exact(charge.exact),
            granularity=format_credits(charge.granularity),
            rounded=format_credits(charge.rounded),
            minimum=format_credits(charge.minimum),
        ),
    )


@router.post(
    "/v1/quotes",
    summary="Price a request without debiting it (any authenticated caller)",
    operation_id="quote",
    tags=["catalog"],
    security=USER_OR_SERVICE,
    responses={
        **answer(200, QuoteResponse, "What a consume of the same request would debit now, and why"),
        **errors(400, 401, 422, e422="Unknown feature or dimension, or invalid quantity"),
    },
)
def quote(request: QuoteRequest) -> QuoteResponse:
    current_principal(router)
    catalog = load_history().in_force(now_ms())
    charge = price(catalog, request.feature, request.quantity, request.dimensions)
    return quote_view(charge, catalog.features[request.feature].unit)
