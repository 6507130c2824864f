"""Faults where Tollbooth meets AWS, on both engines: throttling, 5xx, timeouts, closed
connections, and lost responses (the write took effect, the caller never heard).

Every write path runs through its Lambda handler with the fault injected into botocore
(tests/support/faults.py). In every case: the client gets 503 with Retry-After (never a
500, never AWS's words), or the first answer when botocore's own retry found the write
done; nothing is half-applied; a retry with the same key takes effect exactly once; and
the ledger still adds up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.support.engines import event
from tests.support.faults import KINDS, injected
from tests.support.functions import invoke, invoke_scheduled
from tests.support.ledger import assert_conserved
from tollbooth.bootstrap import get_store, reset

ACCOUNT = "acct-123"  # the sample events' account
WRITE = "dynamodb.TransactWriteItems"


def allowance_body() -> dict[str, Any]:
    body = json.loads(event("allowance.json")["body"])
    body["period_start"] = datetime.now(UTC).strftime("%Y-%m-01T00:00:00Z")
    return body


# Each API write path: the function, its sample event, the body (None: the sample's), and
# whether the account needs credits first.
API_WRITES = {
    "purchase": ("PurchaseFunction", "purchase.json", None, False),
    "grant": ("GrantFunction", "grant.json", None, False),
    "allowance": ("GrantFunction", "allowance.json", allowance_body, False),
    "consume": ("ConsumeFunction", "consume.json", None, True),
    "refund": ("PurchaseFunction", "refund.json", None, True),
}


def ledger_kinds() -> list[str]:
    return [entry["kind"] for entry in invoke("AccountFunction", "ledger.json")["json"]["entries"]]


def assert_unavailable(answer: dict[str, Any]) -> None:
    assert answer["statusCode"] == 503, answer
    assert answer["headers"].get("Retry-After"), answer["headers"]
    assert answer["json"]["error"]["code"] == "storage_unavailable"
    assert "Exception" not in answer["body"] and "dynamodb" not in answer["body"].lower()


@pytest.mark.usefixtures("deployed_like")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", sorted(API_WRITES))
def test_an_api_write_under_a_fault_is_503_or_done_and_a_retry_takes_effect_once(path: str, kind: str) -> None:
    function, sample, make_body, funded = API_WRITES[path]
    body = make_body() if make_body is not None else None
    if funded:
        assert invoke("PurchaseFunction", "purchase.json")["statusCode"] == 201
    before = ledger_kinds()
    # When the write meets the fault on every attempt botocore makes
    reset()
    with injected(kind, WRITE):
        answer = invoke(function, sample, body)
    # Then the client is told to retry, and nothing was written; or (a lost answer, which
    # botocore retried) the write was done once and the client got its answer
    if kind == "lost" and answer["statusCode"] < 300:
        assert len(ledger_kinds()) == len(before) + 1
    else:
        assert_unavailable(answer)
        assert ledger_kinds() == before if kind != "lost" else len(ledger_kinds()) in (len(before), len(before) + 1)
    # And the client's retry with the same key takes effect exactly once
    reset()
    retried = invoke(function, sample, body)
    assert retried["statusCode"] in (200, 201), retried
    assert invoke(function, sample, body)["json"] == retried["json"]
    assert len(ledger_kinds()) == len(before) + 1
    assert_conserved(get_store(), ACCOUNT)


@pytest.mark.usefixtures("deployed_like")
@pytest.mark.parametrize("kind", ["throttle", "lost"])
def test_a_usage_batch_under_a_fault_is_retried_by_sqs_and_charged_once(kind: str) -> None:
    assert invoke("PurchaseFunction", "purchase.json")["statusCode"] == 201
    reset()
    with injected(kind, WRITE, times=1_000 if kind == "throttle" else 1):
        if kind == "throttle":  # no record could be charged: the invocation fails, SQS redelivers the batch
            with pytest.raises(BatchProcessingError):
                invoke_scheduled("UsageFunction", "usage.json")
        else:  # botocore's retry found the batch charged
            assert invoke_scheduled("UsageFunction", "usage.json") == {"batchItemFailures": []}
    reset()
    assert invoke_scheduled("UsageFunction", "usage.json") == {"batchItemFailures": []}
    assert invoke_scheduled("UsageFunction", "usage.json") == {"batchItemFailures": []}
    assert ledger_kinds().count("usage") == 1
    assert_conserved(get_store(), ACCOUNT)


@pytest.mark.usefixtures("deployed_like")
@pytest.mark.parametrize(("kind", "operation"), [("server_error", WRITE), ("throttle", "events.PutEvents")])
def test_the_sweep_under_a_fault_leaves_the_work_for_its_next_run(kind: str, operation: str) -> None:
    # Given an account whose outbox holds events (a grant's lot, warned of at once: it expires within the week)
    body = {**json.loads(event("grant.json")["body"]), "expires_at": _in_days(3)}
    assert invoke("GrantFunction", "grant.json", body)["statusCode"] == 201
    # When the sweep's writes (or its publishing) fail on every attempt
    reset()
    with injected(kind, operation):
        failed = invoke_scheduled("ExpiryFunction", "expiry.json")
    # Then the run reports it left work, and the next run finishes it once
    assert (failed["failures"] >= 1 and failed["warned_lots"] + failed["events_published"] == 0) or kind == "throttle"
    reset()
    again = invoke_scheduled("ExpiryFunction", "expiry.json")
    assert get_store().load_account(ACCOUNT).pending_events == ()
    assert invoke_scheduled("ExpiryFunction", "expiry.json")["events_published"] == 0
    assert again["failures"] == 0
    assert_conserved(get_store(), ACCOUNT)


def _in_days(days: int) -> str:
    return datetime.fromtimestamp(datetime.now(UTC).timestamp() + days * 86_400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
