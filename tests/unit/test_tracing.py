"""Tracing without the X-Ray SDK: what goes to the daemon, and the SnapStart hooks."""

from __future__ import annotations

import json
import random
import socket
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from tollbooth import bootstrap, tracing

ROOT, PARENT = "1-6b076b86-d80731fbfaa4b7e724cd65cd", "53995c3f42cd8ad8"


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A local X-Ray daemon, and the environment Lambda sets for a sampled invocation."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(2)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={ROOT};Parent={PARENT};Sampled=1")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "tollbooth")
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.setattr(tracing._State, "cold_start", True)
    yield listener
    listener.close()


def received(listener: socket.socket) -> dict[str, Any]:
    header, document = listener.recv(65536).decode().split("\n", 1)
    assert json.loads(header) == {"format": "json", "version": 1}
    return json.loads(document)


def test_each_invocation_is_a_subsegment_of_lambdas_segment_annotated_as_powertools_did(
    daemon: socket.socket,
) -> None:
    handler = tracing.capture_lambda_handler(lambda event, context: {"statusCode": 200})
    assert handler({}, None) == {"statusCode": 200}
    first = received(daemon)
    assert first["type"] == "subsegment" and first["name"] == "## <lambda>"
    assert (first["trace_id"], first["parent_id"]) == (ROOT, PARENT)
    assert first["annotations"] == {"ColdStart": True, "Service": "tollbooth"}
    assert first["end_time"] >= first["start_time"]
    handler({}, None)
    assert received(daemon)["annotations"]["ColdStart"] is False


def test_a_handler_that_raises_is_a_fault_with_its_exception(daemon: socket.socket) -> None:
    def handler(event: Any, context: Any) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        tracing.capture_lambda_handler(handler)({}, None)
    document = received(daemon)
    assert document["fault"] is True
    assert document["cause"]["exceptions"][0]["type"] == "ValueError"


@pytest.mark.parametrize("trace_id", [f"Root={ROOT};Parent={PARENT};Sampled=0", ""])
def test_nothing_is_sent_for_an_invocation_that_is_not_sampled(
    daemon: socket.socket, monkeypatch: pytest.MonkeyPatch, trace_id: str
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", trace_id)
    tracing.capture_lambda_handler(lambda event, context: None)({}, None)
    daemon.settimeout(0.2)
    with pytest.raises(TimeoutError):
        daemon.recv(65536)


def test_outside_lambda_or_when_disabled_tracing_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert not tracing.enabled()
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED")
    assert tracing.enabled()
    monkeypatch.delenv("LAMBDA_TASK_ROOT")
    assert not tracing.enabled()


def test_every_aws_call_in_an_invocation_is_an_aws_subsegment_of_the_handlers(daemon: socket.socket) -> None:
    from botocore.client import BaseClient
    from botocore.session import get_session
    from botocore.stub import Stubber

    tracing.instrument_botocore(BaseClient)
    client = get_session().create_client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    stubber.add_response(
        "get_item", {"ResponseMetadata": {"RequestId": "r-1", "HTTPStatusCode": 200, "RetryAttempts": 0}}
    )
    stubber.add_client_error("get_item", "ProvisionedThroughputExceededException", http_status_code=400)
    with stubber:

        def handler(event: Any, context: Any) -> None:
            client.get_item(TableName="ledger", Key={"pk": {"S": "a"}})
            with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
                client.get_item(TableName="ledger", Key={"pk": {"S": "a"}})

        tracing.capture_lambda_handler(handler)({}, None)
    ok, refused, invocation = received(daemon), received(daemon), received(daemon)
    assert ok["name"] == "dynamodb" and ok["namespace"] == "aws"
    assert ok["parent_id"] == invocation["id"] and ok["trace_id"] == ROOT
    assert ok["aws"] == {
        "operation": "GetItem",
        "region": "us-east-1",
        "table_name": "ledger",
        "request_id": "r-1",
        "retries": 0,
    }
    assert ok["http"] == {"response": {"status": 200}}
    assert refused["error"] is True and "fault" not in refused
    assert refused["cause"]["exceptions"][0]["type"] == "ProvisionedThroughputExceededException"


def test_snapstart_hooks_register_only_where_the_runtime_offers_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # absent: the import fails
    assert bootstrap.register_snapstart_hooks() is False
    registered: dict[str, Any] = {}
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_before_snapshot = lambda hook: registered.setdefault("before", hook)  # type: ignore[attr-defined]
    runtime.register_after_restore = lambda hook: registered.setdefault("after", hook)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    assert bootstrap.register_snapstart_hooks() is True
    assert registered == {"before": bootstrap.before_snapshot, "after": bootstrap.after_restore}


def test_a_restored_copy_reseeds_random_and_builds_its_own_settings_and_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TABLE_NAME", "ledger-before")
    bootstrap.reset()
    before = bootstrap.get_settings()
    random.seed(7)
    snapshot_draw = random.random()
    random.seed(7)
    monkeypatch.setenv("TABLE_NAME", "ledger-after")
    bootstrap.after_restore()
    assert random.random() != snapshot_draw
    assert bootstrap.get_settings() is not before and bootstrap.get_settings().table_name == "ledger-after"
    bootstrap.reset()


def test_pynamodb_and_our_clients_share_one_botocore_session_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    from pynamodb.connection import Connection

    monkeypatch.setenv("TABLE_NAME", "ledger")
    bootstrap.reset()
    session = bootstrap.botocore_session()
    assert Connection(region="us-east-1").session is session is Connection(region="us-east-1").session
    loader = session.get_component("data_loader")
    bootstrap.reset()
    renewed = bootstrap.botocore_session()
    # A new session (its own credentials and clients), but the parsed models are kept.
    assert renewed is not session and renewed.get_component("data_loader") is loader
    bootstrap.reset()
