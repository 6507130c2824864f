"""Consume function: POST /v1/accounts/{account_id}/consume, and holds: POST /holds,
/holds/{hold_id}/capture and /holds/{hold_id}/release."""

from tollbooth.api import consume_routes, hold_routes
from tollbooth.api.runtime import build_resolver, lambda_handler_for

app = build_resolver(consume_routes.router, hold_routes.router)
lambda_handler = lambda_handler_for(app)
