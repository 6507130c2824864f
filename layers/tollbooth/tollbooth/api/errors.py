"""The one error map: domain exceptions to HTTP responses ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from tollbooth.api.openapi import IDEMPOTENCY_HEADER
from tollbooth.contracts.common import describe_problems
from tollbooth.domain import errors
from tollbooth.domain.money import format_credits
from tollbooth.observability import count, count_by

logger = Logger(child=True)

RETRY_AFTER_SECONDS = "1"
STATUS_BY_ERROR: dict[type[errors.TollboothError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthenticated: 401,
    errors.InsufficientCredits: 402,
    errors.FeatureLocked: 402,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.IdempotencyKeyReused: 409,
    errors.PaymentReferenceUsed: 409,
    errors.ConcurrentUpdate: 409,
    errors.PeriodConflict: 409,
    errors.UnknownFeature: 422,
    errors.UnknownPackage: 422,
    errors.UnknownPlan: 422,
    errors.NoCatalogInForce: 422,
    errors.InvalidPeriod: 422,
    errors.GrantTooLarge: 422,
    errors.InvalidDimension: 422,
    errors.InvalidExpiry: 422,
    errors.InvalidQuantity: 422,
    errors.StorageUnavailable: 503,
    errors.ChangeTooLarge: 422,
    errors.RefundTooLarge: 422,
    errors.DisputeDecided: 409,
    errors.NotReversible: 422,
    errors.ReversalTooLarge: 422,
    errors.HoldCaptured: 409,
    errors.TooManyHolds: 409,
    errors.HoldTooLong: 422,
}


def status_for(error: errors.TollboothError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]  # type: ignore[index]
    return 500


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def _validation_message(error: RequestValidationError) -> tuple[int, str, str]:
    problems = error.errors()
    if any(tuple(problem.get("loc", ()))[:2] == ("header", IDEMPOTENCY_HEADER) for problem in problems):
        missing = errors.IdempotencyKeyMissing(
            "send an Idempotency-Key header of 1 to 255 visible ASCII characters (spaces inside only)"
        )
        return 400, missing.code, missing.message
    for problem in problems:
        if problem.get("type") == "json_invalid":
            why = (problem.get("ctx") or {}).get("error")
            return 400, "malformed_json", "the request body is not valid JSON" + (f": {why}" if why else "")
    return 422, "validation_error", describe_problems(problems, skip=("body",)) or "the request is invalid"


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(errors.TollboothError)
    def _domain_error(error: errors.TollboothError) -> Response:
        status = status_for(error)
        extra: dict[str, Any] = {}
        if isinstance(error, errors.InsufficientCredits):
            extra = {"required": format_credits(error.required), "balance": format_credits(error.available)}
            if error.missing:
                extra["missing"] = error.missing
        elif "allowed" in error.details:
            extra = {"allowed": error.details["allowed"]}
        if status >= 500:
            logger.exception("storage failure", extra={"code": error.code})
        # Status402, Status409, Status503...: the dashboard's refusals and the rate alarms' numerators;
        # and each refusal by its code (insufficient_credits, feature_locked...).
        count(f"Status{status}")
        count_by("Refusals", "code", error.code)
        response = error_response(status, error.code, error.message, **extra)
        if error.retryable:  # the same request, sent again, can succeed
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response:
        status, code, message = _validation_message(error)
        return error_response(status, code, message)

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        return error_response(404, "not_found", "no such route")

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        # Never leak internals (AWS error text included) to a client.
        logger.exception("unhandled error")
        return error_response(500, "internal_error", "an internal error occurred; it has been logged")
