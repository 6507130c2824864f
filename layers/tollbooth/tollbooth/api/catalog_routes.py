"""GET /v1/catalog, GET /v1/openapi.json and, when enabled, Swagger UI at /docs."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from tollbooth.catalog import discount, load_catalog, price_per_credit
from tollbooth.money import format_credits, format_rounded

router = Router()

API_TITLE = "Tollbooth"
API_VERSION = "1.0.0"


@router.get("/v1/catalog", summary="The catalog: features with rates, packages with prices")
def get_catalog() -> dict:
    catalog = load_catalog()
    base = catalog.packages.get(catalog.base_package) if catalog.base_package else None
    return {
        "version": catalog.version,
        "base_package": catalog.base_package,
        "features": {
            feature_id: {
                "description": feature.description,
                "unit": feature.unit,
                "credits": format_credits(feature.credits),
                "per": feature.per,
                "granularity": format_credits(feature.granularity),
                "minimum": format_credits(feature.minimum),
                "max_quantity": feature.max_quantity,
                "dimensions": {
                    name: {"default": dim.default, "values": {value: str(mult) for value, mult in dim.values.items()}}
                    for name, dim in feature.dimensions.items()
                },
            }
            for feature_id, feature in catalog.features.items()
        },
        "packages": {
            package_id: {
                "name": package.name,
                "price_minor": package.price_minor,
                "currency": package.currency,
                "credits": format_credits(package.credits),
                "bonus_credits": format_credits(package.bonus_credits),
                "expiry": str(package.expiry),
                "bonus_expiry": str(package.bonus_expiry or package.expiry),
                # Display figures: minor units per credit (bonus included), and % off the base package.
                "price_per_credit_minor": format_rounded(price_per_credit(package), 4),
                "discount_percent": None if base is None else format_rounded(discount(package, base) * 100, 1),
            }
            for package_id, package in catalog.packages.items()
        },
    }


@cache
def full_api() -> APIGatewayHttpResolver:
    """A resolver holding every route, used only to describe the whole API."""
    from tollbooth.api import account_routes, consume_routes, grant_routes, purchase_routes, quote_routes
    from tollbooth.api.runtime import build_resolver

    app = build_resolver(
        router,
        quote_routes.router,
        purchase_routes.router,
        grant_routes.router,
        consume_routes.router,
        account_routes.router,
    )
    app.enable_swagger(path="/docs", title=API_TITLE, version=API_VERSION)
    return app


@router.get("/v1/openapi.json", include_in_schema=False)
def get_openapi():
    schema = full_api().get_openapi_json_schema(title=API_TITLE, version=API_VERSION)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=schema)
