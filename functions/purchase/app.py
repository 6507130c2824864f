"""Purchase function: a payment's credits, its refunds and its disputes.

POST /v1/accounts/{account_id}/purchases
POST /v1/accounts/{account_id}/refunds
POST /v1/accounts/{account_id}/disputes
"""

from tollbooth.api import purchase_routes, refund_routes
from tollbooth.api.runtime import build_resolver, lambda_handler_for

app = build_resolver(purchase_routes.router, refund_routes.router)
lambda_handler = lambda_handler_for(app)
