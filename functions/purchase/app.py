"""Purchase function: POST /v1/accounts/{account_id}/purchases."""

from tollbooth.api import purchase_routes
from tollbooth.api.runtime import build_resolver, lambda_handler_for

app = build_resolver(purchase_routes.router)
lambda_handler = lambda_handler_for(app)
