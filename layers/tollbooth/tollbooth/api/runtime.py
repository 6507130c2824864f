"""Process-wide wiring: Powertools utilities, the resolver factory and the lazily built service.

Nothing here touches AWS at import time; the service (and its DynamoDB
connection) is built on first use and kept for the life of the Lambda container.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollbooth import tracing
from tollbooth.api.auth import Principal, principal_from
from tollbooth.api.body import BodyRefused, normalize_body, strict_json_object
from tollbooth.api.errors import register_error_handlers
from tollbooth.app.context import RequestContext
from tollbooth.app.idempotency import Outcome
from tollbooth.contracts.common import is_account_id
from tollbooth.domain.errors import InvalidRequest
from tollbooth.observability import logger, metrics
from tollbooth.settings import get_settings


def current_principal(router: Router) -> Principal:
    """The authenticated caller, or Unauthenticated."""
    return principal_from(router.current_event.raw_event, get_settings().account_claim)


def authorize(
    router: Router, account_id: str, *, service_only: bool = False, creates_credits: bool = False
) -> RequestContext:
    """Check the caller may act on ``account_id`` (and is a service, or one of the roles
    that may create credits, where required); who called, for the use case to record."""
    principal = current_principal(router)
    if service_only or creates_credits:
        principal.require_service()
    if creates_credits:
        principal.require_credit_issuer(get_settings().credit_issuer_roles)
    if not is_account_id(account_id):
        raise InvalidRequest("account_id must be 1 to 128 characters of A-Z a-z 0-9 _ . : @ -")
    principal.require_account(account_id)
    request_id = (router.current_event.raw_event.get("requestContext") or {}).get("requestId")
    return principal.context(request_id if isinstance(request_id, str) else None)


def json_response(outcome: Outcome) -> Response:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    return Response(
        status_code=outcome.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(outcome.body),
        headers=headers,
    )


def build_resolver(*routers: Router) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=strict_json_object)
    register_error_handlers(app)
    for router in routers:
        app.include_router(router)
    return app


def lambda_handler_for(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point for a resolver, with logging, tracing and metrics wired in."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracing.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # Before the resolver, not in a middleware: Powertools validates the body before
        # any middleware runs, and would read a form as a form or fail on bytes.
        try:
            normalize_body(event)
        except BodyRefused as refused:
            return {
                "statusCode": 400,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"error": {"code": refused.code, "message": refused.message}}),
            }
        return app.resolve(event, context)

    return handler
