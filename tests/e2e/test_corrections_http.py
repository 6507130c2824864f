"""Operators' corrections over HTTP on the local stack: a service adjusts an account and
voids a lot, each once per key, and a user may do neither."""

from __future__ import annotations

from tests.support.http import Api, fresh_account


def test_a_service_adjusts_an_account_and_voids_a_lot(api: Api) -> None:
    account = fresh_account("correct")

    def post(path: str, key: str, **body: object):  # type: ignore[no-untyped-def]
        payload = {"reason": "support ticket 42", "actor": "support:test", **body}
        return api.call("POST", f"/v1/accounts/{account}{path}", token=api.service(), body=payload, key=key)

    added = post("/adjustments", "a1", credits="20.5")
    assert added.status == 201 and added.body["credits"] == "20.500", added.body
    assert post("/adjustments", "a1", credits="20.5").headers.get("idempotent-replayed") == "true"
    too_much = post("/adjustments", "a2", credits="-30")
    assert too_much.status == 402 and too_much.body["error"]["code"] == "insufficient_credits"
    taken = post("/adjustments", "a3", credits="-0.5")
    assert taken.status == 201 and taken.body["balance"] == "20.000"
    voided = post(f"/lots/{added.body['lot_ids'][0]}/void", "v1")
    assert voided.status == 201 and voided.body["voided"] == "20.000"
    gone = post(f"/lots/{added.body['lot_ids'][0]}/void", "v2")
    assert gone.status == 404 and gone.body["error"]["code"] == "lot_not_found"
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=api.user(account)).body
    assert (balance["balance"], balance["totals"]["adjusted"], balance["totals"]["voided"]) == (
        "0.000",
        "20.000",
        "20.000",
    )
    entries = api.call("GET", f"/v1/accounts/{account}/ledger", token=api.user(account)).body["entries"]
    assert [(e["kind"], e["actor"]) for e in entries] == [("void", "support:test")] + [
        ("adjustment", "support:test")
    ] * 2


def test_a_user_may_not_correct_and_grants_no_longer_take_source_adjustment(api: Api) -> None:
    account = fresh_account("correct")
    body = {"credits": "5", "reason": "r", "actor": "a"}
    as_user = api.call("POST", f"/v1/accounts/{account}/adjustments", token=api.user(account), body=body, key="k1")
    assert as_user.status in (401, 403), as_user.body
    grant = {"credits": "5", "source": "adjustment", "reason": "r"}
    refused = api.call("POST", f"/v1/accounts/{account}/grants", token=api.service(), body=grant, key="k2")
    assert refused.status == 422, refused.body
