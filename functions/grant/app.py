"""Grant function: POST /v1/accounts/{account_id}/grants and /allowances."""

from tollbooth.api import grant_routes
from tollbooth.api.runtime import build_resolver, lambda_handler_for

app = build_resolver(grant_routes.router)
lambda_handler = lambda_handler_for(app)
