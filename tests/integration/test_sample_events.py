"""Every function runs its sample event from events/ (the same files `sam local invoke -e` takes)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from tests.support.engines import EVENTS_DIR, event
from tests.support.functions import FUNCTIONS, TEMPLATE, invoke, invoke_scheduled
from tollbooth.settings import get_settings
from tollbooth_local.functions import LambdaContext, load_function

EVENT_FOR_FUNCTION = {
    "CatalogFunction": ["catalog.json", "quote.json"],
    "PurchaseFunction": ["purchase.json", "refund.json", "dispute.json"],
    "GrantFunction": ["grant.json", "allowance.json", "adjustment.json", "void.json", "reversal.json"],
    "ConsumeFunction": ["consume.json", "hold.json", "capture.json"],
    "AccountFunction": ["balance.json", "ledger.json"],
    "ExpiryFunction": ["expiry.json"],
    "UsageFunction": ["usage.json"],
}


def test_every_function_has_a_sample_event_that_matches_one_of_its_routes() -> None:
    assert set(EVENT_FOR_FUNCTION) == set(FUNCTIONS)
    route_keys = {route.function_id: set() for route in TEMPLATE.routes()}
    for route in TEMPLATE.routes():
        route_keys[route.function_id].add(route.route_key)
    scheduled = {
        name
        for name, spec in TEMPLATE.resources_of("AWS::Serverless::Function").items()
        if any(e["Type"] == "Schedule" for e in spec["Properties"].get("Events", {}).values())
    }
    queue_fed = {mapping["FunctionId"] for mapping in TEMPLATE.event_source_mappings()}
    for function_id, files in EVENT_FOR_FUNCTION.items():
        for file in files:
            if function_id in queue_fed:
                assert {r["eventSource"] for r in event(file)["Records"]} == {"aws:sqs"}, file
            elif function_id in scheduled:
                assert event(file)["detail-type"] == "Scheduled Event", file
            else:
                assert event(file)["routeKey"] in route_keys[function_id], file
    every_file = {file for files in EVENT_FOR_FUNCTION.values() for file in files}
    assert {path.name for path in EVENTS_DIR.glob("*.json")} == every_file


@pytest.mark.usefixtures("deployed_like")
def test_the_sample_events_tell_a_purchase_consume_read_story() -> None:
    # Given a purchase recorded by a service
    bought = invoke("PurchaseFunction", "purchase.json")
    assert bought["statusCode"] == 201, bought["json"]
    # When the account's user consumes, and a service grants promotional credits
    used = invoke("ConsumeFunction", "consume.json")
    assert used["statusCode"] == 200 and used["json"]["charged"] == "4.000"
    assert invoke("GrantFunction", "grant.json")["statusCode"] == 201
    # Then balance and ledger show all three, and replaying the purchase changes nothing
    balance = invoke("AccountFunction", "balance.json")["json"]
    assert balance["available"] == "5546.000"
    entries = invoke("AccountFunction", "ledger.json")["json"]["entries"]
    assert [entry["kind"] for entry in entries] == ["grant", "consume", "purchase"]
    assert invoke("PurchaseFunction", "purchase.json")["json"] == bought["json"]
    assert invoke("CatalogFunction", "catalog.json")["statusCode"] == 200
    assert invoke("CatalogFunction", "quote.json")["json"]["credits"] == "8.000"
    # And a worker's usage message is charged once, however often SQS delivers it
    usage = invoke_scheduled("UsageFunction", "usage.json")
    assert usage == {"batchItemFailures": []}
    assert invoke_scheduled("UsageFunction", "usage.json") == {"batchItemFailures": []}
    after = invoke("AccountFunction", "balance.json")["json"]
    assert after["available"] == "5540.400"  # 5546 - 3.6 (1,200 premium words: 2.4 x 1.5) - 2 (an hd image)
    # And a service refunds half of the purchase, its credits clawed back in proportion
    refunded = invoke("PurchaseFunction", "refund.json")
    assert refunded["statusCode"] == 201 and refunded["json"]["clawed_back"] == "2750.687"
    # And a scheduled sweep finds nothing due: every lot is good for months
    report = invoke_scheduled("ExpiryFunction", "expiry.json")
    assert report["complete"] and report["expired_lots"] == 0


@pytest.mark.usefixtures("deployed_like")
def test_the_allowance_sample_grants_a_plan_period_once() -> None:
    # Given the sample allowance request, moved to the current month (a past period is refused)
    body = json.loads(event("allowance.json")["body"])
    body["period_start"] = datetime.now(UTC).strftime("%Y-%m-01T00:00:00Z")
    # When it is sent twice, Then the period is granted once
    first = invoke("GrantFunction", "allowance.json", body)
    assert first["statusCode"] == 201 and first["json"]["lots"][0]["plan_id"] == body["plan_id"]
    assert invoke("GrantFunction", "allowance.json", body)["json"] == first["json"]
    assert invoke("AccountFunction", "balance.json")["json"]["available"] == first["json"]["balance"]


@pytest.mark.usefixtures("deployed_like")
@pytest.mark.parametrize("roles", ["", "support-tools", "product-backend-2"])
def test_a_service_role_the_deployment_does_not_name_cannot_create_credits(roles: str) -> None:
    # Given a deployment whose CreditIssuerRoles does not name the sample events' role
    os.environ["CREDIT_ISSUER_ROLES"] = roles
    get_settings.cache_clear()
    # When it purchases, grants or grants an allowance, Then it is forbidden and nothing is created
    for function_id, file in [("PurchaseFunction", "purchase.json"), ("GrantFunction", "grant.json")]:
        refused = invoke(function_id, file)
        assert refused["statusCode"] == 403 and "CreditIssuerRoles" in refused["json"]["error"]["message"]
    assert invoke("GrantFunction", "allowance.json")["statusCode"] == 403
    assert invoke("GrantFunction", "adjustment.json")["statusCode"] == 403  # adding credits mints them
    assert invoke("AccountFunction", "balance.json")["json"]["balance"] == "0.000"
    # (taking credits out creates nothing: any service may, and here there is nothing to take)
    taking = {"credits": "-1", "reason": "r", "actor": "a"}
    assert invoke("GrantFunction", "adjustment.json", taking)["json"]["error"]["code"] == "insufficient_credits"
    # And consuming, which creates nothing, is still open to every service
    assert invoke("ConsumeFunction", "consume.json")["json"]["error"]["code"] == "insufficient_credits"


@pytest.mark.usefixtures("deployed_like")
def test_the_ledger_shows_which_role_created_the_credits() -> None:
    invoke("PurchaseFunction", "purchase.json")
    (entry,) = invoke("AccountFunction", "ledger.json")["json"]["entries"]
    # The API names the role; its ARN (which names the AWS account) stays in the stored entry for audits
    assert entry["caller"] == {"kind": "service", "id": "product-backend"}


@pytest.mark.usefixtures("deployed_like")
def test_the_correction_samples_adjust_an_account_and_void_a_lot_once() -> None:
    # Given the sample grant
    lot_id = invoke("GrantFunction", "grant.json")["json"]["lots"][0]["lot_id"]
    # When an operator adds 25 credits, Then a lot of source adjustment holds them
    added = invoke("GrantFunction", "adjustment.json")
    assert added["statusCode"] == 201 and added["json"]["credits"] == "25.000", added["json"]
    assert invoke("GrantFunction", "adjustment.json")["json"] == added["json"]  # a replay
    # When the sample void names the granted lot, Then its 50 credits are removed, once
    void = event("void.json")
    void["pathParameters"]["lot_id"] = lot_id
    void["rawPath"] = void["requestContext"]["http"]["path"] = f"/v1/accounts/acct-123/lots/{lot_id}/void"
    handler = load_function(FUNCTIONS["GrantFunction"])
    voided = handler(void, LambdaContext("GrantFunction", 10))
    assert voided["statusCode"] == 201 and json.loads(voided["body"])["voided"] == "50.000"
    void["headers"]["idempotency-key"] = "void-again"
    again = json.loads(handler(void, LambdaContext("GrantFunction", 10))["body"])
    assert again["error"]["code"] == "lot_not_found"
    balance = invoke("AccountFunction", "balance.json")["json"]
    assert balance["balance"] == "25.000"
    assert (balance["totals"]["adjusted"], balance["totals"]["voided"]) == ("25.000", "50.000")
    kinds = [entry["kind"] for entry in invoke("AccountFunction", "ledger.json")["json"]["entries"]]
    assert kinds == ["void", "adjustment", "grant"]


@pytest.mark.usefixtures("deployed_like")
def test_the_reversal_sample_gives_a_consume_back_once() -> None:
    # Given the sample purchase and consume (4 credits)
    invoke("PurchaseFunction", "purchase.json")
    charge = invoke("ConsumeFunction", "consume.json")["json"]["entry_id"]
    # When the sample reversal names that consume, Then its 4 credits come back, once
    body = {**json.loads(event("reversal.json")["body"]), "entry_id": charge}
    back = invoke("GrantFunction", "reversal.json", body)
    assert back["statusCode"] == 201 and back["json"]["reversed"] == "4.000", back["json"]
    assert invoke("GrantFunction", "reversal.json", body)["json"] == back["json"]  # a replay
    balance = invoke("AccountFunction", "balance.json")["json"]
    assert (balance["totals"]["consumed"], balance["totals"]["reversed"]) == ("4.000", "4.000")


@pytest.mark.usefixtures("deployed_like")
def test_the_hold_samples_reserve_credits_and_capture_what_the_job_used() -> None:
    # Given the sample purchase, When the user holds 3 HD images' worth (6 credits)
    invoke("PurchaseFunction", "purchase.json")
    held = invoke("ConsumeFunction", "hold.json")
    assert held["statusCode"] == 201 and held["json"]["credits"] == "6.000", held["json"]
    assert invoke("AccountFunction", "balance.json")["json"]["held"] == "6.000"
    # Then the sample capture of 2 images, at the hold's price, charges 4 and releases 2
    capture = event("capture.json")
    hold_id = held["json"]["hold_id"]
    capture["pathParameters"]["hold_id"] = hold_id
    capture["rawPath"] = capture["requestContext"]["http"]["path"] = f"/v1/accounts/acct-123/holds/{hold_id}/capture"
    handler = load_function(FUNCTIONS["ConsumeFunction"])
    captured = json.loads(handler(capture, LambdaContext("ConsumeFunction", 10))["body"])
    assert (captured["captured"], captured["released"]) == ("4.000", "2.000"), captured
    assert invoke("AccountFunction", "balance.json")["json"]["held"] == "0.000"
