"""Each function calls only the DynamoDB actions template.yaml grants it.

The calls are recorded from botocore while the functions run, on both engines: the sample
events' story, a hot account (consumes fast enough to move it to escrow slices, then a
balance and a purchase that read and recall its slices), and a sweep that must load an
account in full. IAM checks each action a transaction holds, so a TransactWriteItems counts
as the PutItem, UpdateItem, DeleteItem and ConditionCheckItem actions inside it."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support.engines import event
from tests.support.functions import FUNCTIONS, invoke, invoke_scheduled
from tollbooth import bootstrap
from tollbooth.domain import clock, slices
from tollbooth.domain.catalog import load_history
from tollbooth.domain.debits import consume
from tollbooth_local.functions import LambdaContext, load_function
from tollbooth_local.template import Template

ACCOUNT = "acct-123"  # the sample events' account
IN_TRANSACTION = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def granted(function_id: str) -> set[str]:
    """The DynamoDB actions the function's policy allows, an index's as ``Action@index``."""
    spec = Template().resources[function_id]["Properties"]
    actions: set[str] = set()
    for policy in spec.get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            where = "@index" if "/index/" in json.dumps(statement.get("Resource")) else ""
            actions |= {a.removeprefix("dynamodb:") + where for a in listed if a.startswith("dynamodb:")}
    return actions


class Calls:
    """The DynamoDB actions each function called."""

    def __init__(self) -> None:
        self.by_function: dict[str, set[str]] = defaultdict(set)
        self.function = ""

    def __call__(self, request: Any, event_name: str, **_: Any) -> None:
        if not self.function:  # the test's own reads and set-up
            return
        operation = event_name.rsplit(".", 1)[-1]
        if operation == "TransactWriteItems":
            items = json.loads(request.body)["TransactItems"]
            self.by_function[self.function] |= {IN_TRANSACTION[kind] for item in items for kind in item}
        else:
            on_index = "IndexName" in json.loads(request.body or b"{}")
            self.by_function[self.function].add(operation + ("@index" if on_index else ""))

    @contextmanager
    def running(self, function_id: str) -> Iterator[None]:
        self.function = function_id
        try:
            yield
        finally:
            self.function = ""


def consume_event(key: str) -> dict[str, Any]:
    sample = event("consume.json")
    sample["headers"]["idempotency-key"] = key
    return sample


def make_escrow_due(account_id: str) -> None:
    """Move credits of a lot that expires into a slice, recorded as due now (its warning
    window stretched over the lot's life): the sweep then loads the account in full."""
    store = bootstrap.get_store()
    account = store.load_account(account_id)
    now = clock.now_ms()
    charge, use = consume(load_history().in_force(now), "text_generation", 500, {})
    window = 100 * 365 * 86_400_000
    share = 2
    mutation = slices.refill(
        account, 7, charge.amount, use, now, share=share, max_items=store.max_transaction_items, window=window
    )
    assert mutation is not None and any(move.escrow and move.escrow.due_at for move in mutation.slice_moves)
    store.apply(mutation, now)


@pytest.mark.usefixtures("deployed_like")
def test_each_function_calls_only_the_dynamodb_actions_its_policy_grants() -> None:
    calls = Calls()
    session = bootstrap.botocore_session()
    session.register("before-send.dynamodb", calls)
    try:
        with calls.running("PurchaseFunction"):
            assert invoke("PurchaseFunction", "purchase.json")["statusCode"] == 201
        with calls.running("GrantFunction"):
            assert invoke("GrantFunction", "grant.json")["statusCode"] == 201
        consume_function = load_function(FUNCTIONS["ConsumeFunction"])
        with calls.running("ConsumeFunction"):
            for n in range(8):  # fast enough for one container to turn the account hot
                answer = consume_function(consume_event(f"hot-{n}"), LambdaContext("ConsumeFunction", 10))
                assert answer["statusCode"] == 200, answer
        assert bootstrap.get_store().load_account(ACCOUNT).escrow, "the account went hot"
        with calls.running("AccountFunction"):
            assert invoke("AccountFunction", "balance.json")["statusCode"] == 200
            assert invoke("AccountFunction", "ledger.json")["statusCode"] == 200
        with calls.running("PurchaseFunction"):
            assert invoke("PurchaseFunction", "refund.json")["statusCode"] == 201
        make_escrow_due(ACCOUNT)
        with calls.running("ExpiryFunction"):
            invoke_scheduled("ExpiryFunction", "expiry.json")
        with calls.running("UsageFunction"):
            invoke_scheduled("UsageFunction", "usage.json")
    finally:
        session.unregister("before-send.dynamodb", calls)
    assert bootstrap.get_store().load_account(ACCOUNT).escrow == (), "the sweep recalled the slices"
    assert {"BatchGetItem", "Query"} <= calls.by_function["ExpiryFunction"]
    for function_id, used in calls.by_function.items():
        assert used <= granted(function_id), (function_id, used - granted(function_id))
