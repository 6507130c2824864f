"""Process-wide wiring: Powertools utilities, the resolver factory and the lazily built service.

Nothing here touches AWS at import time; the service (and its DynamoDB
connection) is built on first use and kept for the life of the Lambda container.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollbooth.api.auth import Principal, principal_from
from tollbooth.api.errors import register_error_handlers
from tollbooth.errors import InvalidRequest
from tollbooth.observability import logger, metrics, tracer
from tollbooth.operations import Outcome
from tollbooth.schemas import ErrorResponse
from tollbooth.settings import get_settings

IDEMPOTENCY_HEADER = "idempotency-key"
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_.:@\-]{1,128}$")


def current_principal(router: Router) -> Principal:
    """The authenticated caller, or Unauthenticated."""
    return principal_from(router.current_event.raw_event, get_settings().account_claim)


def authorize(router: Router, account_id: str, *, service_only: bool = False) -> Principal:
    """Check the caller may act on ``account_id`` (and is a service, where required)."""
    principal = current_principal(router)
    if service_only:
        principal.require_service()
    if not ACCOUNT_ID.match(account_id):
        raise InvalidRequest("account_id must be 1 to 128 characters of A-Z a-z 0-9 _ . : @ -")
    principal.require_account(account_id)
    return principal


def error_responses(descriptions: dict[int, str]) -> dict[int, OpenAPIResponse]:
    """OpenAPI ``responses`` entries for error statuses, all in the one error shape."""
    return {
        status: {"description": text, "content": {"application/json": {"model": ErrorResponse}}}
        for status, text in descriptions.items()
    }


def idempotency_key(router: Router) -> str | None:
    return router.current_event.headers.get(IDEMPOTENCY_HEADER)


def json_response(outcome: Outcome) -> Response:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    return Response(
        status_code=outcome.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(outcome.body),
        headers=headers,
    )


def build_resolver(*routers: Router) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    register_error_handlers(app)
    for router in routers:
        app.include_router(router)
    return app


def lambda_handler_for(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point for a resolver, with logging, tracing and metrics wired in."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        content_type = (event.get("headers") or {}).get("content-type", "")
        if event.get("body") and content_type and not content_type.startswith("application/json"):
            # Powertools would read a form body as a form; this API speaks JSON only.
            error = {"code": "unsupported_content_type", "message": "send the body as JSON (application/json)"}
            return {
                "statusCode": 400,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"error": error}),
            }
        return app.resolve(event, context)

    return handler
