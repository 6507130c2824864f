"""The local stack as a developer runs it (``python -m tollbooth_local run``), once per engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.engines import Engine
from tests.support.http import Api, wait_for_ready
from tollbooth_local.dynamodb_local import free_port
from tollbooth_local.template import REPO_ROOT


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
        wait_for_ready(process, timeout=60)
        endpoints = json.loads((state_dir / "endpoints.json").read_text())
        assert endpoints["api_url"] == f"http://127.0.0.1:{port}"
        yield Api(endpoints["api_url"], state_dir, endpoints)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
