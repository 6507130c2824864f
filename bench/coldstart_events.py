"""The cold-start samples' events (``bench.coldstart``): each sample event from ``events/``
made fresh for an account of its own, and what its first invocation needs in the store."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.common import MAX_GRANT, REPO

# The account the sample events name.
SAMPLE_ACCOUNT = "acct-123"


def sample_events() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted((REPO / "events").glob("*.json"))}


def fresh_event(sample: dict[str, Any], account: str, run: str) -> dict[str, Any]:
    """The sample for a funded account of its own, with keys and ids never used before (no replays)."""
    event: dict[str, Any] = json.loads(json.dumps(sample).replace(SAMPLE_ACCOUNT, account))
    headers = event.get("headers") or {}
    if "idempotency-key" in headers:
        headers["idempotency-key"] = f"{run}-{headers['idempotency-key']}"
    if isinstance(event.get("body"), str) and event["body"].startswith("{"):
        body = json.loads(event["body"])
        if "payment_reference" in body:
            body["payment_reference"] = f"{body['payment_reference']}_{run}"
        if "period_start" in body:
            body["period_start"] = datetime.now(UTC).strftime("%Y-%m-01T00:00:00Z")
        event["body"] = json.dumps(body)
    for record in event.get("Records", []):
        record["messageId"] = str(uuid.uuid4())
        message = json.loads(record["body"])
        for usage in message.get("records", []):
            usage["event_id"] = f"{run}-{usage['event_id']}"
        record["body"] = json.dumps(message)
    if "requestContext" in event:
        event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


def fund(account: str) -> None:
    from tollbooth.app.idempotency import Idempotency
    from tollbooth.bootstrap import get_service

    key = Idempotency.of("fund", "grant", account, {})
    get_service().grant(account, MAX_GRANT, "promotional", "bench", None, None, key)


def seed_due(environment: dict[str, str], account: str) -> None:
    """An account holding a lot that expired a day ago, in the sweep's table: its first
    invocation then does a whole run's work (a Query of every shard, the write-off's
    transaction, PutEvents, the write that empties the outbox), not only the Queries."""
    import boto3

    from tollbooth.adapters.dynamodb.items import account_item, lot_item
    from tollbooth.adapters.keys import Keys
    from tollbooth.domain.clock import now_ms
    from tollbooth.domain.ledger import Account, Lot
    from tollbooth.settings import Settings

    day, now = 86_400_000, now_ms()
    lot = Lot(f"lot-{account}", "purchase", 1000, 1000, now - 400 * day, now - day, price_minor=100, currency="USD")
    indexing = Settings.from_env(environment).expiry_indexing
    held = Account(account, version=1, balance=1000, granted=1000, lots=(lot,))
    items = [account_item(indexing, held, now), lot_item(Keys.account(account), lot)]
    client = boto3.client("dynamodb", endpoint_url=environment["AWS_ENDPOINT_URL"], region_name="us-east-1")
    for item in items:
        client.put_item(TableName=environment["TABLE_NAME"], Item=item.serialize())


def prepare(event: dict[str, Any], account: str) -> None:
    """What the measured request needs first: a refund's or a dispute's payment (a purchase
    of the same reference); for a void, the funded account's lot in the path; for a
    reversal, a consume; for a capture, a hold."""
    from tollbooth.app.idempotency import Idempotency
    from tollbooth.bootstrap import get_service, get_store
    from tollbooth.domain.holds import HoldRequest

    route = str(event.get("routeKey", ""))
    if route.endswith(("/refunds", "/disputes")):
        reference = json.loads(event["body"])["payment_reference"]
        key = Idempotency.of(f"pay-{reference}", "purchase", account, {})
        get_service().purchase(account, "standard", reference, key)
    elif route.endswith("/void"):
        lot_id = get_store().load_account(account).lots[0].lot_id
        event["pathParameters"]["lot_id"] = lot_id
        event["rawPath"] = event["requestContext"]["http"]["path"] = f"/v1/accounts/{account}/lots/{lot_id}/void"
    elif route.endswith("/reversals"):  # a consume to give back
        charged = get_service().consume(
            account, "image_generation", 1, {}, Idempotency.of("job", "consume", account, {})
        )
        event["body"] = json.dumps({**json.loads(event["body"]), "entry_id": charged.body["entry_id"]})
    elif route.endswith("/capture"):  # a hold to capture
        asked = HoldRequest("image_generation", 2, {}, None, 900)
        hold_id = get_service().holds.place(account, asked, Idempotency.of("hold", "hold", account, {})).body["hold_id"]
        event["pathParameters"]["hold_id"] = hold_id
        path = f"/v1/accounts/{account}/holds/{hold_id}/capture"
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
