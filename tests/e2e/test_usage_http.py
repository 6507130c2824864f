"""Usage ingestion on the running local stack: the example worker's usage is charged, and
poison records reach the dead-letter queue with their reasons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

from tests.support.http import Api, fresh_account, fund
from tollbooth.contracts.usage import message_body
from tollbooth_local.aws import client
from tollbooth_local.template import REPO_ROOT


def wait_for(condition, timeout: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    return condition()


def test_the_example_worker_usage_shows_in_balance_and_ledger(api: Api) -> None:
    # Given a funded account
    account = fresh_account()
    fund(api, account, "100")
    # When the example worker reports 5 jobs through the usage queue
    worker = subprocess.run(
        [sys.executable, "docs/examples/worker.py", account],
        cwd=REPO_ROOT,
        env={**os.environ, "TOLLBOOTH_STATE_DIR": str(api.state_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr
    # Then the local poller delivers them and they are charged: 3 x 2.4 + 2 x 3.6 credits
    user = api.user(account)
    balance = wait_for(
        lambda: (
            (b := api.call("GET", f"/v1/accounts/{account}/balance", token=user).body)["totals"]["consumed"] == "14.400"
            and b
        )
    )
    assert balance and balance["available"] == "85.600"
    entries = api.call("GET", f"/v1/accounts/{account}/ledger", token=user).body["entries"]
    lines = [line for entry in entries if entry["kind"] == "usage" for line in entry["records"]]
    assert len(lines) == 5 and all(line["resources"]["model"] == "example-llm-7b" for line in lines)


def test_poison_records_reach_the_dead_letter_queue_with_their_reasons(api: Api) -> None:
    sqs = client("sqs", api.endpoints["aws_endpoint_url"])
    queues = api.endpoints["queues"]
    account = fresh_account()
    fund(api, account, "10")
    good = {
        "event_id": f"good-{uuid.uuid4().hex[:6]}",
        "account_id": account,
        "feature": "text_generation",
        "quantity": 500,
        "occurred_at": "2026-11-25T12:00:00Z",
        "worker_id": "w",
    }
    bad = {**good, "event_id": f"bad-{uuid.uuid4().hex[:6]}", "feature": "telepathy"}
    sqs.send_message(QueueUrl=queues["UsageQueue"]["url"], MessageBody=message_body([good, bad]))

    def dead_lettered() -> list[dict]:
        found = []
        reply = sqs.receive_message(
            QueueUrl=queues["UsageDeadLetterQueue"]["url"], MessageAttributeNames=["All"], WaitTimeSeconds=1
        )
        for message in reply.get("Messages", []):
            body = json.loads(message["Body"])
            if any(record.get("event_id") == bad["event_id"] for record in body.get("records", [])):
                found.append(message)
        return found

    (message,) = wait_for(dead_lettered)
    reasons = json.loads(message["MessageAttributes"]["reasons"]["StringValue"])
    assert reasons and reasons[0].startswith("unknown_feature")
    # And the good record beside it was charged
    user = api.user(account)
    consumed = wait_for(
        lambda: api.call("GET", f"/v1/accounts/{account}/balance", token=user).body["totals"]["consumed"] == "1.000"
    )
    assert consumed
