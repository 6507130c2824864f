"""Expiry on the running local stack: its schedule fires, make expire-now works, events go out."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from tests.support.http import Api
from tollbooth_local.aws import client
from tollbooth_local.template import REPO_ROOT


def reply_queue(api: Api) -> str:
    return str(api.endpoints["events_tap_queue_url"])


def published(api: Api, account: str, until: str, timeout: float = 60) -> list[dict]:
    """Events about ``account`` copied to the stack's local events queue (deleted once read)."""
    sqs = client("sqs", api.endpoints["aws_endpoint_url"])
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = sqs.receive_message(QueueUrl=reply_queue(api), MaxNumberOfMessages=10)
        for message in reply.get("Messages", []):
            event = json.loads(message["Body"])
            if event["detail"]["account_id"] == account:
                found.append(event)
                sqs.delete_message(
                    QueueUrl=api.endpoints["events_tap_queue_url"], ReceiptHandle=message["ReceiptHandle"]
                )
        if any(event["detail-type"] == until for event in found):
            return found
        time.sleep(0.2)
    return found


def grant_expiring(api: Api, account: str, expires_in: timedelta) -> str:
    expires = (datetime.now(UTC) + expires_in).isoformat()
    grant = api.call(
        "POST",
        f"/v1/accounts/{account}/grants",
        token=api.service(),
        body={"credits": "5", "source": "promotional", "reason": "trial", "expires_at": expires},
        key=f"trial-{uuid.uuid4().hex[:6]}",
    )
    assert grant.status == 201, grant.body
    return str(grant.body["lots"][0]["lot_id"])


def test_the_schedule_warns_before_a_lot_expires(api: Api) -> None:
    # Given 5 credits that expire tomorrow, inside the 7-day warning window
    account = f"acct-{uuid.uuid4().hex[:10]}"
    lot_id = grant_expiring(api, account, timedelta(days=1))
    # When the schedule runs (every couple of seconds here), Then credits.expiring goes out
    events = published(api, account, until="credits.expiring")
    assert [(e["detail-type"], e["detail"]["event_id"]) for e in events] == [
        ("credits.expiring", f"credits.expiring:{account}:{lot_id}")
    ]
    assert events[0]["detail"]["amount"] == "5.000"


def test_the_schedule_expires_a_lot_and_writes_off_its_credits(api: Api) -> None:
    # Given 5 credits that expire in two seconds
    account = f"acct-{uuid.uuid4().hex[:10]}"
    lot_id = grant_expiring(api, account, timedelta(seconds=2))
    # When the schedule runs after expiry, Then the write-off is published
    events = published(api, account, until="credits.expired")
    assert f"credits.expired:{account}:{lot_id}" in {e["detail"]["event_id"] for e in events}
    # And the ledger holds the breakage, and the balance is empty
    user = api.user(account)
    ledger = api.call("GET", f"/v1/accounts/{account}/ledger", token=user).body["entries"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [("expire", "-5.000"), ("grant", "5.000")]
    balance = api.call("GET", f"/v1/accounts/{account}/balance", token=user).body
    assert (balance["balance"], balance["totals"]["expired"]) == ("0.000", "5.000")


def expire_now(api: Api) -> dict:
    """What ``make expire-now`` runs, against this stack."""
    result = subprocess.run(
        [sys.executable, "-m", "tollbooth_local", "--state-dir", str(api.state_dir), "run-schedule"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_expire_now_runs_one_sweep_on_the_running_stack(api: Api) -> None:
    report = expire_now(api)
    assert report["complete"] is True and {"expired_lots", "warned_lots", "events_published"} <= set(report)
