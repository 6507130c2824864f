"""An example AI worker: it does some "work" for a few accounts, then reports the usage.

Run it against the local stack (``make run`` in another terminal):

    make example-worker            # or: python docs/examples/worker.py [ACCOUNT ...]

It reads the usage queue's URL and the local stack's AWS endpoint from .local/endpoints.json,
and signs with the same stand-in credentials the local stack uses, so it needs no AWS account.
Against a deployment, pass the stack's ``UsageQueueUrl`` output as USAGE_QUEUE_URL and use
real AWS credentials.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import boto3

from tollbooth.usage_client import UsageClient, UsageNotSent

STATE_DIR = Path(os.environ.get("TOLLBOOTH_STATE_DIR", Path(__file__).resolve().parents[2] / ".local"))
ENDPOINTS = STATE_DIR / "endpoints.json"


def connect() -> UsageClient:
    queue_url = os.environ.get("USAGE_QUEUE_URL")
    if queue_url:
        return UsageClient(queue_url)
    endpoints = json.loads(ENDPOINTS.read_text())
    # The local stack's embedded AWS: stand-in credentials, never a real account's.
    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoints["aws_endpoint_url"],
        region_name=endpoints["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return UsageClient(endpoints["queues"]["UsageQueue"]["url"], sqs)


def do_work(account_id: str, job: int) -> dict:
    """Pretend to generate 1,200 words, and describe what it took."""
    return {
        "event_id": f"example-{account_id}-{job}-{uuid.uuid4().hex[:8]}",  # unique: charged exactly once
        "account_id": account_id,
        "feature": "text_generation",
        "quantity": 1200,
        "dimensions": {"tier": "premium" if job % 2 else "standard"},
        "occurred_at": datetime.now(UTC).isoformat(),
        "worker_id": "example-worker-1",
        "tokens_in": 350,
        "tokens_out": 1600,
        "gpu_ms": 840,
        "model": "example-llm-7b",
        "provider_cost": {"amount_minor": 3, "currency": "USD"},
    }


def main(accounts: list[str]) -> int:
    try:
        client = connect()
    except FileNotFoundError:
        print(f"no {ENDPOINTS}: start the local stack first (make run), or set USAGE_QUEUE_URL", file=sys.stderr)
        return 1
    records = [do_work(account, job) for account in accounts for job in range(5)]
    try:
        report = client.send(records)
    except UsageNotSent as error:
        # Keep them and send again later: an event_id is never charged twice.
        cause = f" ({error.__cause__!r})" if error.__cause__ else ""
        print(f"not sent: {error}{cause}; keeping {len(error.records)} records", file=sys.stderr)
        return 1
    print(f"sent {report.records} records in {report.messages} messages ({report.calls} calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["alice"]))
