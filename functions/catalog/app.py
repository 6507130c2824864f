"""Catalog function: GET /v1/catalog, POST /v1/quotes and GET /v1/openapi.json (and /docs when enabled)."""

from collections.abc import Callable
from functools import cache

from aws_lambda_powertools.utilities.typing import LambdaContext

from tollbooth.api import catalog_routes, quote_routes
from tollbooth.api.runtime import build_resolver, lambda_handler_for
from tollbooth.settings import get_settings

app = build_resolver(catalog_routes.router, quote_routes.router)


_api_handler = lambda_handler_for(app)


@cache
def _docs_handler() -> Callable[[dict, LambdaContext], dict]:
    # Built on first /docs request only: it imports every route to describe the whole API.
    return lambda_handler_for(catalog_routes.full_api())


def lambda_handler(event: dict, context: LambdaContext) -> dict:
    # Swagger UI is served by the resolver that knows every route, and only where enabled.
    if event.get("rawPath") == "/docs" and get_settings().enable_swagger:
        return _docs_handler()(event, context)
    return _api_handler(event, context)
