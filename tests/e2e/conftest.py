"""The local stack as a developer runs it (``python -m tollbooth_local run``), once per engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Engine
from tollbooth_local import tokens
from tollbooth_local.dynamodb_local import free_port
from tollbooth_local.template import REPO_ROOT


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Api:
    base_url: str
    state_dir: Path
    endpoints: dict[str, Any]

    def user(self, account: str) -> str:
        return tokens.mint(self.state_dir, account=account)

    def service(self) -> str:
        return tokens.mint(self.state_dir, role="service")

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            sent.setdefault("content-type", "application/json")
        if token:
            sent["authorization"] = f"Bearer {token}"
        if key is not None:
            sent["idempotency-key"] = key
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, payload, got = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, payload, got = error.code, error.read(), dict(error.headers)
        got = {k.lower(): v for k, v in got.items()}
        parsed = json.loads(payload) if got.get("content-type", "").startswith("application/json") else payload
        return Reply(status, parsed, got)


def _wait_for_ready(process: subprocess.Popen[str], timeout: float) -> str:
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "ready at" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the local stack did not start:\n" + "".join(lines))
    return next(line for line in lines if "ready at" in line)


@pytest.fixture(scope="session")
def api(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    state_dir = tmp_path_factory.mktemp(f"stack-{engine.name}")
    port = free_port()
    # The expiry schedule runs every 2 seconds here, so tests can watch lots expire.
    env = {**os.environ, "PORT": str(port), "ENGINE": "moto", "EXPIRY_RATE_SECONDS": "2", "USAGE_RETRY_SECONDS": "1"}
    if engine.name == "dynamodb-local":
        env.update(ENGINE="dynamodb-local", DYNAMODB_ENDPOINT=engine.dynamodb_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "tollbooth_local", "--state-dir", str(state_dir), "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_ready(process, timeout=60)
        endpoints = json.loads((state_dir / "endpoints.json").read_text())
        assert endpoints["api_url"] == f"http://127.0.0.1:{port}"
        yield Api(endpoints["api_url"], state_dir, endpoints)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
