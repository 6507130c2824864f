"""`make run` behaves like a dev server: Ctrl-C or SIGTERM stops it, after traffic too,
leaving no process and no bound port; PERSIST=1 keeps the tables across restarts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.engines import CACHE_DIR
from tests.support.http import Api, fund, start_local_stack
from tollbooth_local.dynamodb_local import free_port

pytestmark = pytest.mark.slow


@contextmanager
def local_stack(state_dir: Path, **env: str) -> Iterator[tuple[subprocess.Popen[str], Api]]:
    """`python -m tollbooth_local run` in its own process group, started with SIGINT ignored
    as a background job is: Ctrl-C reaching its group must stop it all the same."""
    port = free_port()
    environment = {**os.environ, "PORT": str(port), **env}
    environment.pop("DYNAMODB_ENDPOINT", None)
    process, api = start_local_stack(state_dir, environment, timeout=90, background=True)
    try:
        yield process, api
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def group_is_gone(pgid: int, grace: float = 2.0) -> bool:
    """No process left in the group (multiprocessing's resource tracker leaves as soon as it
    sees the stack's end of its pipe close, a moment after the stack exits)."""
    deadline = time.monotonic() + grace
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_stack_after_traffic_leaving_nothing_behind(tmp_path: Path, signum: int) -> None:
    with local_stack(tmp_path) as (process, api):
        # Given a stack whose containers have served requests
        account = f"stop-{uuid.uuid4().hex[:8]}"
        fund(api, account, "5")
        reply = api.call("GET", f"/v1/accounts/{account}/balance", token=api.user(account))
        assert reply.status == 200
        port = int(api.base_url.rsplit(":", 1)[1])
        # When it gets SIGTERM (from a supervisor) or SIGINT (Ctrl-C reaches the whole group)
        if signum == signal.SIGINT:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        # Then it exits cleanly within 5 s, with no process left in its group and the port free
        assert process.wait(timeout=5) == 0
        assert group_is_gone(process.pid)
        assert port_is_free(port)


def test_persist_keeps_the_tables_across_restarts(tmp_path: Path) -> None:
    (tmp_path / "cache").symlink_to(CACHE_DIR.resolve(), target_is_directory=True)
    account = f"kept-{uuid.uuid4().hex[:8]}"
    with local_stack(tmp_path, PERSIST="1", ENGINE="") as (process, api):
        assert api.endpoints["dynamodb_endpoint_url"] != api.endpoints["aws_endpoint_url"]  # DynamoDB Local
        fund(api, account, "7")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert (tmp_path / "dynamodb").is_dir()
    with local_stack(tmp_path, PERSIST="1", ENGINE="") as (process, api):
        balance = api.call("GET", f"/v1/accounts/{account}/balance", token=api.user(account))
        assert (balance.status, balance.body["available"]) == (200, "7.000")
