"""Account function: GET /v1/accounts/{account_id}/balance, /ledger and /holds."""

from tollbooth.api import account_routes
from tollbooth.api.runtime import build_resolver, lambda_handler_for

app = build_resolver(account_routes.router)
lambda_handler = lambda_handler_for(app)
