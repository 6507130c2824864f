"""Holds over HTTP on the local stack: a user reserves credits before a long job, a service
captures what it used (once), and the rest comes back; the balance shows what is held."""

from __future__ import annotations

from tests.support.http import Api, fresh_account


def test_a_user_holds_credits_and_a_service_captures_what_the_job_used_once(api: Api) -> None:
    account = fresh_account("hold")
    user, service = api.user(account), api.service()
    grant = {"credits": "20", "source": "promotional", "reason": "welcome"}
    assert api.call("POST", f"/v1/accounts/{account}/grants", token=service, key="g1", body=grant).status == 201
    held = api.call("POST", f"/v1/accounts/{account}/holds", token=user, key="h1", body={"credits": "12"})
    assert held.status == 201 and held.body["credits"] == "12.000", held.body
    assert held.body["available"] == "8.000"
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=user).body
    assert (balance["held"], balance["available"], balance["balance"]) == ("12.000", "8.000", "20.000")
    hold = f"/v1/accounts/{account}/holds/{held.body['hold_id']}"
    captured = api.call("POST", f"{hold}/capture", token=service, key="c1", body={"credits": "5"})
    assert captured.status == 201 and (captured.body["captured"], captured.body["released"]) == ("5.000", "7.000")
    assert api.call("POST", f"{hold}/capture", token=service, key="c1", body={"credits": "5"}).body == captured.body
    twice = api.call("POST", f"{hold}/capture", token=service, key="c2", body={"credits": "1"})
    assert twice.status == 409 and twice.body["error"]["code"] == "hold_captured"
    listed = api.call("GET", f"/v1/accounts/{account}/holds", token=user).body
    assert [(h["status"], h["captured"]) for h in listed["holds"]] == [("captured", "5.000")]
    assert api.call("GET", f"/v1/accounts/{account}/balance", token=user).body["available"] == "15.000"


def test_a_hold_the_credits_cannot_cover_is_402_and_another_accounts_hold_is_not_found(api: Api) -> None:
    account = fresh_account("hold")
    user = api.user(account)
    short = api.call("POST", f"/v1/accounts/{account}/holds", token=user, key="h1", body={"credits": "1"})
    assert short.status == 402 and short.body["error"]["code"] == "insufficient_credits"
    both = {"credits": "1", "feature": "text_generation", "quantity": 5}
    assert api.call("POST", f"/v1/accounts/{account}/holds", token=user, key="h2", body=both).status == 422
    path = f"/v1/accounts/{account}/holds/hold_00000000000000000000000000/release"
    missing = api.call("POST", path, token=user, key="r1")
    assert missing.status == 404 and missing.body["error"]["code"] == "hold_not_found"
    other = api.call("POST", f"/v1/accounts/{account}-x/holds", token=user, key="h3", body={"credits": "1"})
    assert other.status == 403
