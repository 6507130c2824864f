"""Refunds over HTTP on the local stack: a service refunds a payment, its credits come back
out of the account, and a user may not refund."""

from __future__ import annotations

import uuid

from tests.support.http import Api, fresh_account


def test_a_service_refunds_half_a_purchase_and_then_the_rest_and_no_more(api: Api) -> None:
    account, payment = fresh_account("refund"), f"pi_{uuid.uuid4().hex[:12]}"
    bought = api.call(
        "POST",
        f"/v1/accounts/{account}/purchases",
        token=api.service(),
        body={"package_id": "standard", "payment_reference": payment},
        key=f"buy-{payment}",
    )
    assert bought.status == 201

    def refund(key: str, **body: object):  # type: ignore[no-untyped-def]
        payload = {"payment_reference": payment, "reason": "customer asked", "actor": "support:test", **body}
        return api.call("POST", f"/v1/accounts/{account}/refunds", token=api.service(), body=payload, key=key)

    half = refund("r1", amount_minor=2000)
    assert half.status == 201 and half.body["clawed_back"] == "2750.687", half.body
    assert refund("r1", amount_minor=2000).headers.get("idempotent-replayed") == "true"
    rest = refund("r2")
    assert rest.status == 201 and rest.body["refunded_total_minor"] == 3999
    more = refund("r3", amount_minor=1)
    assert more.status == 422 and more.body["error"]["code"] == "refund_exceeds_payment"
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=api.user(account)).body
    assert balance["balance"] == "0.000" and balance["totals"]["clawed_back"] == "5500.000"
    kinds = [
        e["kind"] for e in api.call("GET", f"/v1/accounts/{account}/ledger", token=api.user(account)).body["entries"]
    ]
    assert kinds == ["refund", "refund", "purchase"]


def test_a_user_may_not_refund_and_an_unknown_payment_is_404(api: Api) -> None:
    account = fresh_account("refund")
    body = {"payment_reference": "pi_nothing", "reason": "r", "actor": "a"}
    as_user = api.call("POST", f"/v1/accounts/{account}/refunds", token=api.user(account), body=body, key="k1")
    assert as_user.status in (401, 403), as_user.body
    unknown = api.call("POST", f"/v1/accounts/{account}/refunds", token=api.service(), body=body, key="k2")
    assert unknown.status == 404 and unknown.body["error"]["code"] == "payment_not_found"


def test_a_dispute_freezes_a_purchase_and_losing_it_claws_it_back_once(api: Api) -> None:
    account, payment = fresh_account("dispute"), f"pi_{uuid.uuid4().hex[:12]}"
    body = {"package_id": "starter", "payment_reference": payment}
    assert api.call("POST", f"/v1/accounts/{account}/purchases", token=api.service(), body=body, key="b").status == 201

    def report(status: str, key: str):  # type: ignore[no-untyped-def]
        payload = {"payment_reference": payment, "status": status, "reason": "chargeback", "actor": "stripe-webhook"}
        return api.call("POST", f"/v1/accounts/{account}/disputes", token=api.service(), body=payload, key=key)

    opened = report("opened", "d1")
    assert opened.status == 201 and opened.body["frozen"] == "1000.000", opened.body
    spend = {"feature": "image_generation", "quantity": 1}
    user = api.user(account)
    refused = api.call("POST", f"/v1/accounts/{account}/consume", token=user, body=spend, key="c1")
    assert refused.status == 402
    assert report("opened", "d2").body["changed"] is False  # the webhook, delivered again
    lost = report("lost", "d3")
    assert lost.status == 201 and lost.body["clawed_back"] == "1000.000" and lost.body["balance"] == "0.000"
    assert report("won", "d4").status == 409
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=user).body
    assert (balance["balance"], balance["frozen"], balance["totals"]["clawed_back"]) == ("0.000", "0.000", "1000.000")
