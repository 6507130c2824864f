"""End to end over real HTTP against the local stack, on moto and on DynamoDB Local."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from decimal import Decimal

import pytest

from tests.support.engines import worked_examples
from tests.support.http import Api, fresh_account, fund


def test_the_readme_session_catalog_purchase_consume_balance_ledger(api: Api) -> None:
    account = fresh_account()
    user, service = api.user(account), api.service()
    # Given the catalog
    catalog = api.call("GET", "/v1/catalog")
    assert catalog.status == 200 and catalog.body["packages"]["standard"]["credits"] == "5000.000"
    assert catalog.body["packages"]["standard"]["discount_percent"] == "27.2"
    # When a service records a purchase
    bought = api.call(
        "POST",
        f"/v1/accounts/{account}/purchases",
        token=service,
        body={"package_id": "standard", "payment_reference": f"pi_{account}"},
        key="purchase-1",
    )
    assert bought.status == 201 and bought.body["balance"] == "5500.000"
    assert sorted(lot["source"] for lot in bought.body["lots"]) == ["bonus", "purchase"]
    # And the user consumes
    used = api.call(
        "POST",
        f"/v1/accounts/{account}/consume",
        token=user,
        body={
            "feature": "image_generation",
            "quantity": 2,
            "dimensions": {"resolution": "4k", "licence": "commercial"},
        },
        key="consume-1",
    )
    assert used.status == 200 and used.body["charged"] == "16.000" and used.body["balance"] == "5484.000"
    # Then balance and ledger agree
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=user)
    assert balance.status == 200 and balance.body["available"] == "5484.000"
    assert balance.body["next_expiry"]["amount"] == "484.000"  # the bonus lot expires first and was drawn first
    ledger = api.call("GET", f"/v1/accounts/{account}/ledger?limit=10", token=user)
    assert [e["kind"] for e in ledger.body["entries"]] == ["consume", "purchase"]
    assert ledger.body["entries"][0]["entry_id"] == used.body["entry_id"]
    assert ledger.body["entries"][0]["idempotency_key"] == "consume-1"


def test_replays_return_the_first_response_and_reuse_with_another_body_is_409(api: Api) -> None:
    account = fresh_account()
    fund(api, account, "10")
    user = api.user(account)
    body = {"feature": "image_generation", "quantity": 3}
    first = api.call("POST", f"/v1/accounts/{account}/consume", token=user, body=body, key="k1")
    again = api.call("POST", f"/v1/accounts/{account}/consume", token=user, body=body, key="k1")
    assert (again.status, again.body) == (first.status, first.body)
    assert again.headers.get("idempotent-replayed") == "true"
    other = api.call("POST", f"/v1/accounts/{account}/consume", token=user, body={**body, "quantity": 4}, key="k1")
    assert (other.status, other.body["error"]["code"]) == (409, "idempotency_key_reused")
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=user)
    assert balance.body["available"] == "7.000"


def test_concurrent_replays_of_one_key_debit_once(api: Api) -> None:
    account = fresh_account()
    fund(api, account, "10")
    user = api.user(account)
    replies = []

    def send() -> None:
        replies.append(
            api.call(
                "POST",
                f"/v1/accounts/{account}/consume",
                token=user,
                body={"feature": "image_generation", "quantity": 2},
                key="same",
            )
        )

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {reply.status for reply in replies} == {200}
    assert len({reply.body["entry_id"] for reply in replies}) == 1
    ledger = api.call("GET", f"/v1/accounts/{account}/ledger", token=user)
    assert [e["kind"] for e in ledger.body["entries"]] == ["consume", "grant"]


def test_sixteen_threads_hammering_one_account_get_exactly_what_it_pays_for(api: Api) -> None:
    # Given an account with 40 credits and 16 clients each trying to spend 1 credit 4 times
    # (the account turns hot: its consumes go to escrow slices)
    account = fresh_account()
    fund(api, account, "40")
    user = api.user(account)
    statuses: Counter[int] = Counter()
    answered: list[str] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        for n in range(4):
            reply = api.call(
                "POST",
                f"/v1/accounts/{account}/consume",
                token=user,
                body={"feature": "image_generation", "quantity": 1},
                key=f"w{worker}-{n}",
            )
            with lock:
                statuses[reply.status] += 1
                if reply.status == 200:
                    answered.append(reply.body["entry_id"])

    threads = [threading.Thread(target=client, args=(worker,)) for worker in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly the 40 calls the credits cover succeed, the rest get 402, none a 409;
    # and every success is one ledger entry, in whichever stream served it
    assert dict(statuses) == {200: 40, 402: 24}, statuses
    assert sum(statuses.values()) == 64
    successes = statuses[200]
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=user).body
    entries = api.call("GET", f"/v1/accounts/{account}/ledger?limit=100", token=user).body["entries"]
    consumed = [e for e in entries if e["kind"] == "consume"]
    assert sorted(e["entry_id"] for e in consumed) == sorted(answered)  # every 200 is in the ledger, once
    granted, spent = Decimal(balance["totals"]["granted"]), Decimal(balance["totals"]["consumed"])
    assert granted - spent == Decimal(balance["balance"]) == sum(Decimal(lot["remaining"]) for lot in balance["lots"])
    assert spent == successes and Decimal(balance["available"]) >= 0


@pytest.mark.parametrize(
    ("method", "path", "who", "status"),
    [
        ("POST", "/v1/accounts/{me}/consume", None, 401),
        ("GET", "/v1/accounts/{me}/balance", None, 401),
        ("POST", "/v1/accounts/{me}/purchases", None, 401),
        ("GET", "/v1/accounts/{me}/balance", "garbage", 401),
        ("GET", "/v1/accounts/{other}/balance", "user", 403),
        ("GET", "/v1/accounts/{other}/ledger", "user", 403),
        ("POST", "/v1/accounts/{other}/consume", "user", 403),
        ("POST", "/v1/accounts/{me}/purchases", "user", 403),
        ("POST", "/v1/accounts/{me}/grants", "user", 403),
        ("GET", "/v1/accounts/{me}/balance", "user", 200),
        ("GET", "/v1/accounts/{other}/balance", "service", 200),
        ("GET", "/v1/catalog", None, 200),
    ],
)
def test_authorization(api: Api, method: str, path: str, who: str | None, status: int) -> None:
    me, other = fresh_account(), fresh_account()
    token = {None: None, "garbage": "not-a-jwt", "user": api.user(me), "service": api.service()}[who]
    body = {"feature": "image_generation", "quantity": 1} if "consume" in path else None
    if "purchases" in path:
        body = {"package_id": "starter", "payment_reference": f"pi_{me}"}
    if "grants" in path:
        body = {"credits": "1", "source": "bonus", "reason": "r"}
    reply = api.call(method, path.format(me=me, other=other), token=token, body=body, key="auth-test")
    assert reply.status == status, reply.body
    if status >= 400:
        assert set(reply.body["error"]) >= {"code", "message"}


CONSUME = "/v1/accounts/{account}/consume"
PURCHASE = "/v1/accounts/{account}/purchases"
GRANT = "/v1/accounts/{account}/grants"
GOOD_CONSUME = {"feature": "image_generation", "quantity": 1}
GOOD_GRANT = {"credits": "1", "source": "bonus", "reason": "r"}


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (CONSUME, {}, 422, "validation_error"),
        (CONSUME, {"feature": "image_generation"}, 422, "validation_error"),
        (CONSUME, {**GOOD_CONSUME, "colour": "red"}, 422, "validation_error"),
        (CONSUME, {**GOOD_CONSUME, "quantity": -1}, 422, "validation_error"),
        (CONSUME, {**GOOD_CONSUME, "quantity": 0}, 422, "validation_error"),
        (CONSUME, {**GOOD_CONSUME, "quantity": 10**30}, 422, "validation_error"),
        (CONSUME, {**GOOD_CONSUME, "quantity": 1.5}, 422, "validation_error"),
        (CONSUME, {**GOOD_CONSUME, "quantity": "1"}, 422, "validation_error"),
        (CONSUME, {**GOOD_CONSUME, "quantity": True}, 422, "validation_error"),
        (CONSUME, {**GOOD_CONSUME, "quantity": 101}, 422, "invalid_quantity"),
        (CONSUME, {**GOOD_CONSUME, "feature": "telepathy"}, 422, "unknown_feature"),
        (CONSUME, {**GOOD_CONSUME, "feature": 7}, 422, "validation_error"),
        (CONSUME, {**GOOD_CONSUME, "dimensions": ["hd"]}, 422, "validation_error"),
        (CONSUME, {**GOOD_CONSUME, "dimensions": {"resolution": "8k"}}, 422, "invalid_dimension"),
        (CONSUME, {**GOOD_CONSUME, "dimensions": {"mood": "happy"}}, 422, "invalid_dimension"),
        (CONSUME, [], 422, "validation_error"),
        (CONSUME, b"{not json", 400, "malformed_json"),
        (PURCHASE, {"package_id": "gold", "payment_reference": "pi_x"}, 422, "unknown_package"),
        (PURCHASE, {"package_id": "starter"}, 422, "validation_error"),
        (PURCHASE, {"package_id": 1, "payment_reference": "pi_x"}, 422, "validation_error"),
        (PURCHASE, {"package_id": "starter", "payment_reference": "pi_x", "credits": 5}, 422, "validation_error"),
        (GRANT, {**GOOD_GRANT, "credits": "-1"}, 422, "validation_error"),
        (GRANT, {**GOOD_GRANT, "credits": 0}, 422, "validation_error"),
        (GRANT, {**GOOD_GRANT, "credits": 1.5}, 422, "validation_error"),
        (GRANT, {**GOOD_GRANT, "credits": "0.0001"}, 422, "validation_error"),
        (GRANT, {**GOOD_GRANT, "credits": "1" + "0" * 30}, 422, "validation_error"),
        (GRANT, {**GOOD_GRANT, "source": "gift"}, 422, "validation_error"),
        (GRANT, {**GOOD_GRANT, "expires_at": "2001-01-01T00:00:00Z"}, 422, "invalid_expiry"),
        (GRANT, {**GOOD_GRANT, "expires_at": "2031-01-01T00:00:00"}, 422, "validation_error"),
        (GRANT, {**GOOD_GRANT, "expires_at": "soon"}, 422, "validation_error"),
        (GRANT, {"source": "bonus", "reason": "r"}, 422, "validation_error"),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_code(api: Api, path: str, body: object, status: int, code: str) -> None:
    account = fresh_account()
    raw = body if isinstance(body, bytes) else None
    reply = api.call(
        "POST",
        path.format(account=account),
        token=api.service(),
        body=None if raw is not None else body,
        raw=raw,
        key=f"bad-{uuid.uuid4()}",
    )
    assert (reply.status, reply.body["error"]["code"]) == (status, code), reply.body
    assert reply.body["error"]["message"]
    assert api.call("GET", f"/v1/accounts/{account}/balance", token=api.service()).body["balance"] == "0.000"


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"key": None}, 400, "idempotency_key_missing"),
        ({"key": ""}, 400, "idempotency_key_missing"),
        ({"key": "k" * 256}, 400, "idempotency_key_missing"),
        ({"headers": {"content-type": "application/x-www-form-urlencoded"}}, 400, "unsupported_content_type"),
    ],
)
def test_request_rules(api: Api, request_kwargs: dict, status: int, code: str) -> None:
    account = fresh_account()
    kwargs = {"key": "ok", "body": GOOD_GRANT, "token": api.service(), **request_kwargs}
    reply = api.call("POST", GRANT.format(account=account), **kwargs)
    assert (reply.status, reply.body["error"]["code"]) == (status, code)


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("limit=0", 422, "validation_error"),
        ("limit=101", 422, "validation_error"),
        ("limit=abc", 422, "validation_error"),
        ("cursor=zzz", 400, "invalid_cursor"),
    ],
)
def test_ledger_query_errors(api: Api, query: str, status: int, code: str) -> None:
    reply = api.call("GET", f"/v1/accounts/{fresh_account()}/ledger?{query}", token=api.service())
    assert (reply.status, reply.body["error"]["code"]) == (status, code)


def test_a_bad_account_id_is_400_and_an_unknown_route_404(api: Api) -> None:
    bad = api.call("GET", "/v1/accounts/a%20b/balance", token=api.service())
    assert (bad.status, bad.body["error"]["code"]) == (400, "invalid_request")
    missing = api.call("GET", "/v1/nothing-here")
    assert (missing.status, missing.body["error"]["code"]) == (404, "not_found")


def test_openapi_and_swagger_are_served(api: Api) -> None:
    spec = api.call("GET", "/v1/openapi.json")
    assert spec.status == 200
    paths = spec.body["paths"]
    for path in ("purchases", "grants", "consume", "balance", "ledger"):
        assert f"/v1/accounts/{{account_id}}/{path}" in paths
    assert "/v1/catalog" in paths and "/v1/quotes" in paths
    docs = api.call("GET", "/docs")
    assert docs.status == 200 and b"swagger" in docs.body.lower()


@pytest.mark.parametrize(("feature", "quantity", "dimensions", "credits"), worked_examples())
def test_a_quote_equals_the_charge(api: Api, feature: str, quantity: int, dimensions: dict, credits: str) -> None:
    account = fresh_account()
    fund(api, account, "100")
    user = api.user(account)
    request = {"feature": feature, "quantity": quantity, "dimensions": dimensions}
    quote = api.call("POST", "/v1/quotes", token=user, body=request)
    assert quote.status == 200 and quote.body["credits"] == credits
    charged = api.call("POST", f"/v1/accounts/{account}/consume", token=user, body=request, key="q")
    assert charged.body["charged"] == quote.body["credits"]
    assert charged.body["catalog_version"] == quote.body["catalog_version"]
    # And quoting debited nothing
    assert api.call("GET", f"/v1/accounts/{account}/balance", token=user).body["totals"]["consumed"] == credits


def test_a_quote_shows_its_breakdown_and_needs_a_caller(api: Api) -> None:
    request = {"feature": "text_generation", "quantity": 1201, "dimensions": {"tier": "premium"}}
    quote = api.call("POST", "/v1/quotes", token=api.service(), body=request).body
    assert quote["breakdown"]["base"] == "2.402"
    assert quote["breakdown"]["multipliers"] == [{"dimension": "tier", "value": "premium", "multiplier": "1.5"}]
    assert (quote["breakdown"]["exact"], quote["breakdown"]["rounded"], quote["credits"]) == ("3.603", "3.610", "3.610")
    assert api.call("POST", "/v1/quotes", body=request).status == 401
    bad = api.call("POST", "/v1/quotes", token=api.service(), body={**request, "dimensions": {"tier": "gold"}})
    assert (bad.status, bad.body["error"]["code"]) == (422, "invalid_dimension")
