"""GET /v1/catalog, GET /v1/openapi.json and, when enabled, Swagger UI at /docs."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from tollbooth.api.openapi import (
    API_DESCRIPTION,
    API_TITLE,
    API_VERSION,
    PUBLIC,
    answer,
    errors,
    security_schemes,
    tags,
    with_canonical_headers,
    without_unused_schemas,
)
from tollbooth.contracts.http import CatalogResponse
from tollbooth.domain import clock
from tollbooth.domain.catalog import (
    Campaign,
    Catalog,
    CatalogHistory,
    Feature,
    LotTerms,
    Package,
    Plan,
    discount,
    load_history,
    price_per_credit,
)
from tollbooth.domain.money import format_credits, format_rounded

router = Router()


def _terms(terms: LotTerms) -> dict:
    return {
        "licences": None if terms.licences is None else list(terms.licences),
        "features": None if terms.features is None else list(terms.features),
        "priority_processing": terms.priority_processing,
        "unlocks": list(terms.unlocks),
    }


def _versions(history: CatalogHistory, in_force: str | None) -> list[dict]:
    return [
        {
            "version": other.version,
            "effective_from": clock.to_iso(other.effective_from_ms),
            "in_force": other.version == in_force,
        }
        for other in history.versions
    ]


def _feature(catalog: Catalog, feature_id: str, feature: Feature) -> dict:
    return {
        "description": feature.description,
        "unit": feature.unit,
        "credits": format_credits(feature.credits),
        "per": feature.per,
        "granularity": format_credits(feature.granularity),
        "minimum": format_credits(feature.minimum),
        "max_quantity": feature.max_quantity,
        "locked": feature.locked,
        "unlocked_by": catalog.unlocked_by(feature_id) if feature.locked else [],
        "dimensions": {
            name: {"default": dim.default, "values": {value: str(mult) for value, mult in dim.values.items()}}
            for name, dim in feature.dimensions.items()
        },
    }


def _package(package: Package, base: Package | None) -> dict:
    return {
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
        **_terms(package),
    }


def _plan(plan: Plan) -> dict:
    return {
        "name": plan.name,
        "period": plan.period,
        "price_minor": plan.price_minor,
        "currency": plan.currency,
        "allowance": format_credits(plan.allowance),
        "rollover_cap": format_credits(plan.rollover_cap),
        "expiry": "end of billing period",
        **_terms(plan),
    }


def _campaign(campaign: Campaign, now: int) -> dict:
    return {
        "name": campaign.name,
        "starts_at": clock.to_iso(clock.from_datetime(campaign.starts_at)),
        "ends_at": clock.to_iso(clock.from_datetime(campaign.ends_at)),
        "bonus_percent": str(campaign.bonus_percent),
        "packages": list(campaign.packages),
        "active": campaign.active_at(now),
    }


def catalog_view(catalog: Catalog, history: CatalogHistory, now: int) -> dict:
    base = catalog.packages.get(catalog.base_package) if catalog.base_package else None
    in_force = history.in_force(now).version if now >= history.versions[0].effective_from_ms else None
    return {
        "version": catalog.version,
        "effective_from": clock.to_iso(catalog.effective_from_ms),
        "in_force": catalog.version == in_force,
        "versions": _versions(history, in_force),
        "base_package": catalog.base_package,
        "licences": list(catalog.licences),
        "default_licence": catalog.default_licence,
        "features": {
            feature_id: _feature(catalog, feature_id, feature) for feature_id, feature in catalog.features.items()
        },
        "packages": {package_id: _package(package, base) for package_id, package in catalog.packages.items()},
        "plans": {plan_id: _plan(plan) for plan_id, plan in catalog.plans.items()},
        "campaigns": {campaign_id: _campaign(campaign, now) for campaign_id, campaign in catalog.campaigns.items()},
    }


@router.get(
    "/v1/catalog",
    summary="The catalog in force (or ?version= for an older one, for audits)",
    operation_id="getCatalog",
    tags=["catalog"],
    security=PUBLIC,
    responses={
        **answer(200, CatalogResponse, "Features with rates, packages with prices and perks, plans, campaigns"),
        **errors(404, 422, e404="No catalog version of that name"),
    },
)
def get_catalog(version: Annotated[str | None, Query(max_length=64)] = None) -> CatalogResponse:
    history = load_history()
    now = clock.now_ms()
    catalog = history.in_force(now) if version is None else history.get(version)
    return CatalogResponse.model_validate(catalog_view(catalog, history, now))


@cache
def full_api() -> APIGatewayHttpResolver:
    """A resolver holding every route, used only to describe the whole API."""
    from tollbooth.api import (
        account_routes,
        adjustment_routes,
        consume_routes,
        grant_routes,
        hold_routes,
        purchase_routes,
        quote_routes,
        refund_routes,
    )
    from tollbooth.api.runtime import build_resolver

    app = build_resolver(
        router,
        quote_routes.router,
        purchase_routes.router,
        refund_routes.router,
        grant_routes.router,
        adjustment_routes.router,
        consume_routes.router,
        hold_routes.router,
        account_routes.router,
    )
    app.enable_swagger(
        path="/docs",
        title=API_TITLE,
        version=API_VERSION,
        description=API_DESCRIPTION,
        security_schemes=security_schemes(),
        tags=tags(),
    )
    return app


@cache
def openapi_document() -> str:
    """The OpenAPI document, generated from the routes (committed as docs/openapi.json)."""
    generated = full_api().get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description=API_DESCRIPTION,
        security_schemes=security_schemes(),
        tags=tags(),
    )
    document = with_catalog_values(without_unused_schemas(json.loads(generated)), load_history())
    return json.dumps(with_canonical_headers(document), indent=2)


# Request fields whose values the catalog bounds: (schema, property, catalog section).
CATALOG_BOUND = [
    ("ConsumeRequest", "feature", "features"),
    ("QuoteRequest", "feature", "features"),
    ("PurchaseRequest", "package_id", "packages"),
    ("AllowanceRequest", "plan_id", "plans"),
]


def _known(history: CatalogHistory, section: str) -> list[str]:
    return sorted({name for catalog in history.versions for name in getattr(catalog, section)})


def with_catalog_values(document: dict, history: CatalogHistory) -> dict:
    """Enums where the catalog bounds a value. The list is every catalog version's, so the
    document does not change at the instant a version takes effect; the version in force
    decides (a value it lacks is 422 unknown_feature, unknown_package or unknown_plan)."""
    schemas = document["components"]["schemas"]
    for schema, field, section in CATALOG_BOUND:
        schemas[schema]["properties"][field]["enum"] = _known(history, section)
        schemas[schema]["properties"][field]["description"] = (
            f"One of the catalog's {section}; the version in force decides (GET /v1/catalog)"
        )
    grant = schemas["GrantRequest"]["properties"]
    for field in ("licences", "features"):
        array = next(option for option in grant[field]["anyOf"] if option.get("type") == "array")
        array["items"]["enum"] = _known(history, field)
    return document


@router.get("/v1/openapi.json", include_in_schema=False)
def get_openapi():
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_document())
