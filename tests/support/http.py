"""Talking to the local stack over HTTP: the client, replies, and a funded account."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tollbooth_local import tokens
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


def wait_for_ready(process: subprocess.Popen[str], timeout: float) -> str:
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


def start_local_stack(
    state_dir: Path, env: dict[str, str], timeout: float, *, background: bool = False
) -> tuple[subprocess.Popen[str], Api]:
    """`python -m tollbooth_local run` in a process group of its own, as a terminal starts it,
    once it says it is ready; the caller stops it. ``background``: with SIGINT ignored, as a
    non-interactive shell starts a background job (CI's, say)."""
    ignored = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None
    process = subprocess.Popen(
        [sys.executable, "-m", "tollbooth_local", "--state-dir", str(state_dir), "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=ignored,
    )
    wait_for_ready(process, timeout=timeout)
    endpoints = json.loads((state_dir / "endpoints.json").read_text())
    return process, Api(endpoints["api_url"], state_dir, endpoints)


def fresh_account(prefix: str = "acct") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def fund(api: Api, account: str, credits: str) -> None:
    reply = api.call(
        "POST",
        f"/v1/accounts/{account}/grants",
        token=api.service(),
        body={"credits": credits, "source": "promotional", "reason": "test funds"},
        key=f"fund-{uuid.uuid4()}",
    )
    assert reply.status == 201, reply.body


def gateway_event(method: str, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An HTTP API (payload v2) event for ``method path``, as API Gateway hands it to a function."""
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "headers": headers or {},
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "isBase64Encoded": False,
    }
