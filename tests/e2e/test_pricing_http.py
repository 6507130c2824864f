"""The pricing model over real HTTP: catalog versions, restricted credits, perks and plans."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.support.http import Api, fresh_account


def buy(api: Api, account: str, package_id: str) -> dict:
    reply = api.call(
        "POST",
        f"/v1/accounts/{account}/purchases",
        token=api.service(),
        body={"package_id": package_id, "payment_reference": f"pi_{uuid.uuid4().hex}"},
        key=f"buy-{uuid.uuid4()}",
    )
    assert reply.status == 201, reply.body
    return reply.body


def test_the_catalog_shows_versions_plans_campaigns_perks_and_restrictions(api: Api) -> None:
    catalog = api.call("GET", "/v1/catalog").body
    assert catalog["in_force"] and catalog["versions"][-1]["version"] == catalog["version"]
    assert catalog["effective_from"] == "2026-11-01T00:00:00.000Z"
    assert catalog["licences"] == ["personal", "commercial"]
    assert catalog["packages"]["starter"]["licences"] == ["personal"]
    assert catalog["packages"]["premium"]["priority_processing"] is True
    assert catalog["features"]["voice_cloning"]["unlocked_by"] == ["premium", "pro_monthly", "pro_yearly"]
    assert catalog["plans"]["pro_monthly"]["rollover_cap"] == "500.000"
    assert catalog["packages"]["top_up"]["expiry"] == "end of billing period"
    assert catalog["campaigns"]["launch_week"]["packages"] == ["standard", "premium"]
    # Old versions stay readable by name, for audits
    old = api.call("GET", f"/v1/catalog?version={catalog['version']}")
    assert old.status == 200 and old.body["version"] == catalog["version"]
    missing = api.call("GET", "/v1/catalog?version=1999-01-01")
    assert (missing.status, missing.body["error"]["code"]) == (404, "catalog_version_not_found")


def test_personal_credits_do_not_pay_for_commercial_use(api: Api) -> None:
    # Given an account holding only Starter credits (personal use)
    account = fresh_account()
    buy(api, account, "starter")
    user = api.user(account)
    image = {"feature": "image_generation", "quantity": 1}
    # When it asks for a commercial image, Then 402 says which kind of credits it lacks
    refused = api.call(
        "POST",
        f"/v1/accounts/{account}/consume",
        token=user,
        body={**image, "dimensions": {"licence": "commercial"}},
        key="commercial",
    )
    assert refused.status == 402
    assert refused.body["error"]["missing"] == {"licence": "commercial", "feature": "image_generation"}
    assert (refused.body["error"]["required"], refused.body["error"]["balance"]) == ("2.000", "0.000")
    # And personal use is paid as usual
    ok = api.call("POST", f"/v1/accounts/{account}/consume", token=user, body=image, key="personal")
    assert ok.status == 200 and ok.body["charged"] == "1.000"


def test_premium_perks_are_on_the_balance_and_unlock_a_feature(api: Api) -> None:
    account = fresh_account()
    user = api.user(account)
    voice = {"feature": "voice_cloning", "quantity": 1}
    buy(api, account, "standard")
    locked = api.call("POST", f"/v1/accounts/{account}/consume", token=user, body=voice, key="v1")
    assert (locked.status, locked.body["error"]["code"]) == (402, "feature_locked")
    assert locked.body["error"]["allowed"] == ["premium", "pro_monthly", "pro_yearly"]
    buy(api, account, "premium")
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=user).body
    assert balance["perks"] == {"priority_processing": True, "unlocked_features": ["voice_cloning"]}
    assert any(lot["unlocks"] == ["voice_cloning"] for lot in balance["lots"])
    assert api.call("POST", f"/v1/accounts/{account}/consume", token=user, body=voice, key="v2").status == 200


def test_a_service_grants_a_plan_allowance_once_per_period(api: Api) -> None:
    account = fresh_account()
    now = datetime.now(UTC)
    period = {"plan_id": "pro_monthly", "period_start": now.replace(day=1, hour=0, minute=0, second=0).isoformat()}
    path = f"/v1/accounts/{account}/allowances"
    first = api.call("POST", path, token=api.service(), body=period)
    assert first.status == 201 and first.body["lots"][0]["source"] == "allowance"
    again = api.call("POST", path, token=api.service(), body=period)
    assert (again.status, again.body) == (201, first.body) and again.headers.get("idempotent-replayed") == "true"
    assert api.call("POST", path, token=api.user(account), body=period).status == 403
    unknown = api.call("POST", path, token=api.service(), body={**period, "plan_id": "gold"})
    assert (unknown.status, unknown.body["error"]["code"]) == (422, "unknown_plan")
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=api.user(account)).body
    assert balance["available"] == "2000.000" and balance["perks"]["priority_processing"] is True
