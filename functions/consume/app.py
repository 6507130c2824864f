"""Consume function: POST /v1/accounts/{account_id}/consume."""

from tollbooth.api import consume_routes
from tollbooth.api.runtime import build_resolver, lambda_handler_for

app = build_resolver(consume_routes.router)
lambda_handler = lambda_handler_for(app)
