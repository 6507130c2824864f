"""Grant function: POST /v1/accounts/{account_id}/grants and /allowances, and operators'
corrections: /adjustments, /reversals and /lots/{lot_id}/void."""

from tollbooth.api import adjustment_routes, grant_routes
from tollbooth.api.runtime import build_resolver, lambda_handler_for

app = build_resolver(grant_routes.router, adjustment_routes.router)
lambda_handler = lambda_handler_for(app)
