"""Reversals over HTTP on the local stack: a service gives back a failed generation's
charge, once per key and never beyond what it took; a user may not."""

from __future__ import annotations

from tests.support.http import Api, fresh_account


def test_a_service_reverses_a_consume_in_parts_and_never_beyond_the_charge(api: Api) -> None:
    account = fresh_account("reverse")
    service = api.service()
    api.call(
        "POST",
        f"/v1/accounts/{account}/grants",
        token=service,
        key="g1",
        body={"credits": "10", "source": "promotional", "reason": "welcome"},
    )
    consumed = api.call(
        "POST",
        f"/v1/accounts/{account}/consume",
        token=api.user(account),
        key="c1",
        body={"feature": "text_generation", "quantity": 2000},
    )
    assert consumed.status == 200, consumed.body
    charge = consumed.body["entry_id"]

    def reverse(key: str, **body: object):  # type: ignore[no-untyped-def]
        payload = {"entry_id": charge, "reason": "generation failed", "actor": "render-worker", **body}
        return api.call("POST", f"/v1/accounts/{account}/reversals", token=service, body=payload, key=key)

    part = reverse("r1", credits="1.5")
    assert part.status == 201 and (part.body["reversed"], part.body["balance"]) == ("1.500", "7.500"), part.body
    assert reverse("r1", credits="1.5").headers.get("idempotent-replayed") == "true"
    assert reverse("r1", credits="2").status == 409  # the same key with another body
    rest = reverse("r2")
    assert (rest.body["reversed"], rest.body["reversed_total"], rest.body["balance"]) == ("2.500", "4.000", "10.000")
    beyond = reverse("r3", credits="0.001")
    assert beyond.status == 422 and beyond.body["error"]["code"] == "reversal_exceeds_charge"
    again = api.call(
        "POST",
        f"/v1/accounts/{account}/reversals",
        token=service,
        key="r4",
        body={"entry_id": rest.body["entry_id"], "reason": "r", "actor": "a"},
    )
    assert again.status == 422 and again.body["error"]["code"] == "not_reversible"
    unknown = reverse("r5", entry_id="led_nothing-1")
    assert unknown.status == 404 and unknown.body["error"]["code"] == "entry_not_found"
    as_user = api.call(
        "POST",
        f"/v1/accounts/{account}/reversals",
        token=api.user(account),
        key="r6",
        body={"entry_id": charge, "reason": "r", "actor": "a"},
    )
    assert as_user.status in (401, 403), as_user.body
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=api.user(account)).body
    assert balance["totals"]["reversed"] == "4.000"
    kinds = [
        e["kind"] for e in api.call("GET", f"/v1/accounts/{account}/ledger", token=api.user(account)).body["entries"]
    ]
    assert kinds == ["reversal", "reversal", "consume", "grant"]
